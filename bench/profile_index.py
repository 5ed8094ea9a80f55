#!/usr/bin/env python
"""Where indexing time goes: cProfile on the main process of ``indexer.pipeline.run``.

For each engine and each worker setting (default: 1, and one per core), indexes the
corpus into a fresh index under cProfile, saves the profile to bench/out/*.prof
(open with ``python -m pstats`` or snakeviz), and prints:

* the top functions by own time (tottime) and by cumulative time;
* own time grouped into areas (waiting for workers, building engine documents,
  engine calls, manifest, parse/sanitize/analyse when workers=1, …);
* the time spent in Python's cyclic garbage collector (gc.callbacks);
* what crosses the process boundary per article (pickled FileOutcome size, and
  pickle dumps/loads time per article), which cProfile cannot see: with workers
  the results are unpickled in ProcessPoolExecutor's manager thread.

cProfile slows pure-Python code more than C/Rust calls, so read the shares, not the
absolute seconds (bench_index.py gives unprofiled figures).

  python bench/profile_index.py --posts 3000 --engine tantivy
  python bench/profile_index.py --corpus /work/shared/corpus --engine both --workers 1,0
  python bench/profile_index.py --from-prof bench/out/profile-tantivy-workers1-*.prof
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pickle
import pstats
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import _benchlib as B

# (area, predicate on (filename, funcname)); first match wins.
AREAS: list[tuple[str, Any]] = [
    ("waiting for worker results", lambda f, n: "acquire" in n and "_thread.lock" in n),
    (
        "tantivy: Token objects (_pretok, before fc76eec)",
        lambda f, n: f.endswith("tantivy_engine.py") and n in ("<listcomp>", "_pretok"),
    ),
    ("tantivy: to_document (Python)", lambda f, n: f.endswith("tantivy_engine.py")),
    ("tantivy: add_document (Rust)", lambda f, n: "add_document" in n),
    ("tantivy: commit (Rust)", lambda f, n: "commit" in n and "tantivy" in n),
    ("tantivy: delete_documents_by_term (Rust)", lambda f, n: "delete_documents_by_term" in n),
    ("tantivy: Document.add_* (Rust)", lambda f, n: "tantivy.Document" in n or "PreTokenizedString" in n),
    ("ES: building _source (to_source/_joined)", lambda f, n: f.endswith("elasticsearch_engine.py")),
    ("sanitize (bleach/html5lib)", lambda f, n: "bleach" in f or "html5lib" in f or f.endswith("sanitize.py")),
    (
        "JSON serialization (ES bulk bodies, reports)",
        lambda f, n: (
            ("elastic_transport" in f and "serializer" in f)
            or "orjson" in n
            or f.endswith(("json/encoder.py", "json/__init__.py"))
        ),
    ),
    (
        "ES: HTTP (socket, urllib3, transport)",
        lambda f, n: (
            "urllib3" in f
            or "elastic_transport" in f
            or "socket" in n
            or "http" in f.rsplit("/", 1)[-1]
            or "ssl" in n
            or "recv" in n
            or "sendall" in n
        ),
    ),
    ("ES: client helpers (streaming_bulk)", lambda f, n: "/elasticsearch/" in f),
    ("manifest (sqlite)", lambda f, n: "sqlite3" in n or f.endswith("manifest.py")),
    ("sanitize (bleach/html5lib)", lambda f, n: "bleach" in f or "html5lib" in f or f.endswith("sanitize.py")),
    ("markdown", lambda f, n: "markdown_it" in f),
    ("yaml", lambda f, n: "yaml" in f or "yaml" in n),
    ("analyse: rjieba", lambda f, n: "Jieba" in n),
    ("analyse: normalize (translate/opencc)", lambda f, n: "translate" in n or "opencc" in n or "opencc" in f),
    ("analyse: token lists (analysis.py)", lambda f, n: f.endswith("analysis.py")),
    ("parse post (posts.py)", lambda f, n: f.endswith("posts.py")),
    ("file reads", lambda f, n: "_io.BufferedReader" in n or "read_bytes" in n),
    ("indexer loop (pipeline.py)", lambda f, n: f.endswith("pipeline.py") or f.endswith("indexing.py")),
    ("process pool plumbing", lambda f, n: "concurrent" in f or "multiprocessing" in f or "fork" in n),
]


def area_of(filename: str, funcname: str) -> str:
    for name, pred in AREAS:
        if pred(filename, funcname):
            return name
    return "other"


def attribute(filename: str, func: str, tt: float, callers: dict) -> dict[str, float]:
    """Own time by area; a generic builtin (str.join, re.sub …) is charged to its callers' areas."""
    area = area_of(filename, func)
    if area != "other" or filename != "~" or not callers:
        return {area: tt}
    weights = {}
    for (cf, _cl, cn), info in callers.items():
        caller_tt = info[2] if len(info) > 2 else 0.0
        a = area_of(cf, cn)
        weights[a] = weights.get(a, 0.0) + caller_tt
    total = sum(weights.values())
    if total <= 0:
        return {area: tt}
    return {a: tt * w / total for a, w in weights.items()}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="cProfile the main process of indexer.pipeline.run per engine and worker count.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    B.add_corpus_args(ap, "engines to profile; elasticsearch needs ELASTICSEARCH_URL (skipped by 'both' when unset)")
    ap.add_argument("--workers", default="1,0", help="comma-separated worker counts to profile (0 = one per core)")
    ap.add_argument("--top", type=int, default=15, help="functions to list per profile")
    ap.add_argument("--payload-sample", type=int, default=300, help="articles to measure the IPC payload on")
    ap.add_argument("--wait-quiet", type=float, default=0, help="wait up to this many seconds for other busy processes")
    ap.add_argument("--from-prof", nargs="+", metavar="PROF", help="only re-analyse saved .prof files (no indexing)")
    return ap.parse_args(argv)


class GcTimer:
    def __init__(self) -> None:
        self.total = 0.0
        self.count = 0
        self._t0 = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.total += time.perf_counter() - self._t0
            self.count += 1

    def __enter__(self) -> GcTimer:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        gc.callbacks.remove(self)


def analyse_profile(stats: pstats.Stats, title: str, note: str, top: int) -> dict[str, Any]:
    """Print own time by area and the top functions of one profile; return the figures."""
    total = stats.total_tt
    areas: dict[str, float] = {}
    rows = []
    for (filename, line, func), (_cc, nc, tt, ct, callers) in stats.stats.items():
        name = func if filename == "~" else f"{func} ({Path(filename).name}:{line})"
        for area, share in attribute(filename, func, tt, callers).items():
            areas[area] = areas.get(area, 0.0) + share
        rows.append((tt, ct, nc, name))
    by_tt = sorted(rows, reverse=True)[:top]
    by_ct = sorted(rows, key=lambda r: -r[1])[:top]
    print(f"\n#### {title}; main-thread profile total {total:.1f} s; {note}\n")
    print(
        B.markdown_table(
            ["area (own time)", "seconds", "share"],
            [[k, v, f"{v / total * 100:.0f} %"] for k, v in sorted(areas.items(), key=lambda kv: -kv[1]) if v / total >= 0.005],
        )
    )
    print()
    print(B.markdown_table(["top by own time", "own s", "cum s", "calls"], [[n, tt, ct, nc] for tt, ct, nc, n in by_tt]))
    print()
    print(B.markdown_table(["top by cumulative time", "cum s", "own s", "calls"], [[n, ct, tt, nc] for tt, ct, nc, n in by_ct]))
    return {"total": total, "areas": areas, "by_tt": by_tt}


def profile_run(engine: str, workers: int, corpus: Path, work: Path, url: str | None, top: int) -> dict[str, Any]:
    from indexer.pipeline import Options, run

    index = B.unique_index()
    data = work / f"data-{engine}-{index}"
    settings = B.make_settings(engine, data, index, url)
    prof = cProfile.Profile()
    try:
        with GcTimer() as gct:
            t0 = time.perf_counter()
            prof.enable()
            report = run(settings, corpus, opts=Options(workers=workers))
            prof.disable()
            wall = time.perf_counter() - t0
    finally:
        if engine == "elasticsearch" and url:
            B.es_drop(url, index)
        B.rmtree(data)
    label = f"{engine}-workers{workers or 'default'}"
    prof_path = B.OUT / f"profile-{label}-{B.stamp()}.prof"
    prof_path.parent.mkdir(parents=True, exist_ok=True)
    prof.dump_stats(str(prof_path))
    title = (
        f"{engine}, workers={workers or f'default ({os.cpu_count()})'}: {report.indexed} articles in {wall:.1f} s "
        f"under cProfile ({report.indexed / wall:.0f} articles/s)"
    )
    analysis = analyse_profile(
        pstats.Stats(prof), title, f"GC {gct.total:.2f} s in {gct.count} collections; profile {prof_path.name}", top
    )
    total, areas, by_tt = analysis["total"], analysis["areas"], analysis["by_tt"]
    return {
        "engine": engine,
        "workers": workers,
        "articles": report.indexed,
        "wall_s": wall,
        "profile_total_s": total,
        "gc_s": gct.total,
        "gc_collections": gct.count,
        "areas": areas,
        "prof": str(prof_path),
        "top_tottime": [{"name": n, "tottime": tt, "cumtime": ct, "calls": nc} for tt, ct, nc, n in by_tt],
    }


def payload(corpus: Path, sample: int) -> dict[str, Any]:
    """What one FileOutcome costs to ship from a worker to the main process."""
    from indexer.pipeline import scan
    from indexer.pool import init_worker
    from searchcore.indexing import process_file

    init_worker(None)
    outs = []
    raw = 0
    for p, rel in scan(corpus):
        st = os.stat(p)
        o = process_file(p, rel, st.st_size, st.st_mtime_ns)
        if o.article is not None:
            outs.append(o)
            raw += st.st_size
        if len(outs) >= sample:
            break
    if not outs:
        return {}
    blobs = [pickle.dumps(o, protocol=pickle.HIGHEST_PROTOCOL) for o in outs]
    t0 = time.perf_counter()
    for o in outs:
        pickle.dumps(o, protocol=pickle.HIGHEST_PROTOCOL)
    t1 = time.perf_counter()
    for b in blobs:
        pickle.loads(b)
    t2 = time.perf_counter()

    def ntok(stream) -> int:  # a space-joined string (current model) or a list of (text, start, end)
        return len(stream.split()) if isinstance(stream, str) else len(stream)

    tokens = [sum(ntok(getattr(o.article, f)) for f in ("title_words", "title_chars", "body_words", "body_chars")) for o in outs]
    res = {
        "articles": len(outs),
        "file_bytes_mean": raw / len(outs),
        "pickle_bytes_mean": statistics.mean(len(b) for b in blobs),
        "tokens_mean": statistics.mean(tokens),
        "dumps_ms": (t1 - t0) / len(outs) * 1000,
        "loads_ms": (t2 - t1) / len(outs) * 1000,
    }
    return res


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.from_prof:
        for f in a.from_prof:
            analyse_profile(pstats.Stats(f), Path(f).name, "re-analysed", a.top)
        return 0
    url = B.es_url(a.es_url)
    engines = B.engines_from_arg(a.engine, url)
    workers = [int(w) for w in a.workers.split(",") if w.strip()]
    work = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    try:
        corpus, label = B.prepare_corpus(a.corpus, a.posts, work, a.synthetic_cache)
        print(f"\n### Indexing profile: {label}; {B.load_note()}")
        results: dict[str, Any] = {"label": label, "machine": B.machine(), "runs": []}
        for engine in engines:
            for w in workers:
                busy = B.wait_quiet(a.wait_quiet)
                if busy:
                    B.log("busy (figures may be noisy): " + "; ".join(busy))
                results["runs"].append(profile_run(engine, w, corpus, work, url, a.top))
        pl = payload(corpus, a.payload_sample)
        results["payload"] = pl
        if pl:
            buf = io.StringIO()
            buf.write(
                f"\nPer article crossing the process boundary ({pl['articles']} articles): file {pl['file_bytes_mean']:,.0f} B, "
                f"pickled FileOutcome {pl['pickle_bytes_mean']:,.0f} B ({pl['tokens_mean']:,.0f} tokens); "
                f"pickle.dumps {pl['dumps_ms']:.2f} ms, pickle.loads {pl['loads_ms']:.2f} ms"
            )
            print(buf.getvalue())
        out = B.write_json(
            "", results, str(B.OUT / f"profile-{'corpus' if a.corpus else f'synthetic{a.posts}'}-{B.stamp()}.json")
        )
        B.log(f"JSON written to {out}")
    finally:
        B.rmtree(work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
