#!/usr/bin/env python
"""Indexing throughput: the bare pipeline bound against full indexing into each engine.

Measured in one run, over the same files with a warm page cache:

  (a)  bare pipeline, all workers: read + parse + sanitize + analyse every file with
       ``searchcore.indexing.process_file`` in a ProcessPoolExecutor (workers forked up
       front, chunks of len // (workers*8) within 1..64); the FileOutcomes come back to
       the parent process as they do in a real run. No engine. This is the bound a real
       run can approach. (The indexer's own pool, ``indexer.pool``, adds a time budget
       per file and replaces a worker that overruns it; on 2,000 posts it measured
       1,030 art/s against this executor's 1,049, equal within noise.)
  (a') the same, but workers send back only a flag: the difference to (a) is the cost
       of shipping the token lists between processes (pickle + pipe + unpickle).
  (b)  bare pipeline on one core, in one process.
  (c)  full indexing: ``indexer.pipeline.run(settings, path)`` into a fresh index of each
       engine; articles/s and the ratio to (a).
  (d)  peak memory of the process tree (sampled: PSS and RSS summed over the phase's
       process and its workers; the ES node's RSS apart) and the index size on disk (tantivy:
       folder size; Elasticsearch: ``_stats/store`` of the primaries).
  (e)  an incremental re-run over the unchanged folder.

Each phase runs in a freshly spawned process (imports done before the clock starts),
so its memory figures are its own. Prints a Markdown table and writes JSON to
bench/out/. No timing is asserted.

  python bench/bench_index.py --posts 3000
  ELASTICSEARCH_URL=http://127.0.0.1:9200 python bench/bench_index.py --corpus /work/shared/corpus --engine both
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import _benchlib as B


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Indexing throughput: bare pipeline bound (all cores and one core) vs full indexing into each engine.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    B.add_corpus_args(ap, "engines for the full runs; elasticsearch needs ELASTICSEARCH_URL (skipped by 'both' when unset)")
    ap.add_argument("--workers", type=int, default=0, help="worker processes for (a) and (c); 0 = one per core, as the indexer")
    ap.add_argument("--batch-size", type=int, default=500, help="indexer batch size (indexer.pipeline.Options.batch_size)")
    ap.add_argument("--repeat", type=int, default=1, help="repeat each timed phase and report the median")
    ap.add_argument("--skip-bare", action="store_true", help="skip (a), (a') and (b)")
    ap.add_argument("--skip-dropped", action="store_true", help="skip (a'), the cost-of-shipping phase")
    ap.add_argument("--skip-single", action="store_true", help="skip (b), the slowest bare phase")
    ap.add_argument("--wait-quiet", type=float, default=0, help="wait up to this many seconds for other busy processes to finish")
    ap.add_argument("--json", help="write the JSON here (default: bench/out/index-<label>-<time>.json)")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder and the ES indices (printed at the end)")
    return ap.parse_args(argv)


def todo_list(path: Path) -> list[tuple[str, str, int, int, int]]:
    """Arguments for process_file, built as indexer.pipeline.run builds them."""
    from indexer.pipeline import scan
    from searchcore.files import DEFAULT_MAX_BYTES

    out = []
    for p, rel in scan(path):
        st = os.stat(p)
        out.append((p, rel, st.st_size, st.st_mtime_ns, DEFAULT_MAX_BYTES))
    return out


def warm_page_cache(args: list[tuple]) -> int:
    total = 0
    for a in args:
        with open(a[0], "rb") as fh:
            total += len(fh.read())
    return total


def bare_parallel(args: list[tuple], workers: int, discard: bool) -> tuple[int, int]:
    """(a) / (a'): a fork-context executor, workers forked up front, chunk = len // (workers * 8)
    within 1..64; the indexer's own pool (indexer.pool) measured the same throughput."""
    from indexer.pool import init_worker

    fn = B.process_discard if discard else B.process_star
    ok = n = 0
    if workers <= 1 or len(args) < 64:
        results = map(fn, args)
        for r in results:
            n += 1
            ok += r[1] if discard else r.article is not None
        return n, ok
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("fork"), initializer=init_worker, initargs=(None,)
    ) as pool:
        list(pool.map(B.noop, range(workers)))  # fork them all now, as the indexer does
        chunk = max(1, min(64, len(args) // (workers * 8) or 1))
        for r in pool.map(fn, args, chunksize=chunk):
            n += 1
            ok += r[1] if discard else r.article is not None
    return n, ok


def bare_single(args: list[tuple]) -> tuple[int, int]:
    """(b): process_file in this process, one file after another (no user dictionary, as in (a))."""
    from searchcore.indexing import process_file

    ok = 0
    for a in args:
        ok += process_file(*a).article is not None
    return len(args), ok


QUIET = 0.0  # --wait-quiet


def _phase_fresh(engine: str, corpus: str, data: str, index: str, url: str | None, workers: int, batch: int) -> dict:
    from indexer.pipeline import Options, run

    settings = B.make_settings(engine, Path(data), index, url)
    return {
        "index": index,
        "data_dir": data,
        "report": run(settings, Path(corpus), opts=Options(workers=workers, batch_size=batch)).to_dict(),
    }


PHASES = {
    "bare_parallel": bare_parallel,
    "bare_single": bare_single,
    "index": _phase_fresh,
}


def _phase_entry(name: str, kwargs: dict) -> dict:
    """Runs in a freshly spawned process: the phase's own wall and CPU time."""
    import resource
    import time

    # Imports happen before the clock (a CLI run pays them too: see the (e') row).
    import indexer.pipeline  # noqa: F401
    import searchcore.engines.tantivy_engine  # noqa: F401

    if kwargs.get("engine") == "elasticsearch":
        import searchcore.engines.elasticsearch_engine  # noqa: F401
    r0s, r0c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    result = PHASES[name](**kwargs)
    seconds = time.perf_counter() - t0
    r1s, r1c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "seconds": seconds,
        "cpu_main_s": (r1s.ru_utime + r1s.ru_stime) - (r0s.ru_utime + r0s.ru_stime),
        "cpu_children_rusage_s": (r1c.ru_utime + r1c.ru_stime) - (r0c.ru_utime + r0c.ru_stime),
        "result": result,
    }


def timed(name: str, kwargs: dict, repeat: int, es_pid: int | None = None) -> dict:
    """Run phase ``name`` ``repeat`` times, each in a new spawned process (so its memory is
    its own), under the RSS/PSS sampler; report the median run.

    Before each run, waits (up to --wait-quiet s) for other busy processes and
    records what was still busy, so noisy figures can be told apart.
    """
    runs = []
    for i in range(repeat):
        kw = kwargs(i) if callable(kwargs) else kwargs
        busy = B.wait_quiet(QUIET)
        if busy:
            B.log("busy during this phase (figures may be noisy): " + "; ".join(busy))
        load = os.getloadavg()[0]
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as ex:
            ex.submit(B.noop, 0).result()  # the phase process is up and has imported this module
            with B.Sampler(extra_pid=es_pid, include_self=False) as smp, B.Clock(extra_pid=es_pid) as clk:
                out = ex.submit(_phase_entry, name, kw).result()
        runs.append(
            {
                **out,
                "wall_s": clk.seconds,
                "cpu_children_s": max(out["cpu_children_rusage_s"], smp.children_cpu),
                "cpu_children_sampled_s": smp.children_cpu,
                "cpu_es_s": clk.cpu_extra if es_pid else None,
                "peak_pss_tree_mb": B.mb(smp.peak_tree_pss),
                "peak_rss_tree_mb": B.mb(smp.peak_tree),
                "peak_rss_es_mb": B.mb(smp.peak_extra) if es_pid else None,
                "processes": smp.max_procs,
                "busy_before": busy,
                "loadavg1_before": round(load, 2),
            }
        )
    best = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
    return {**best, "all_seconds": [r["seconds"] for r in runs], "median_seconds": statistics.median(r["seconds"] for r in runs)}


def full_run(engine: str, corpus: Path, work: Path, url: str | None, workers: int, batch: int, repeat: int) -> dict:
    """(c) fresh index, (d) sizes and memory, (e) incremental re-run, for one engine."""
    es_pid = B.es_node_pid(url) if engine == "elasticsearch" and url else None
    made: list[tuple[str, Path]] = []

    def fresh(_i: int) -> dict:
        index = B.unique_index()
        data = work / f"data-{engine}-{index}"
        made.append((index, data))
        return {
            "engine": engine,
            "corpus": str(corpus),
            "data": str(data),
            "index": index,
            "url": url,
            "workers": workers,
            "batch": batch,
        }

    try:
        full = timed("index", fresh, repeat, es_pid)
        chosen = full["result"]  # the median run: its index is the one measured below
        keep = (chosen["index"], Path(chosen["data_dir"]))
        for index, data in made:
            if index != keep[0]:
                _drop(engine, url, index, data)
        if engine == "tantivy":
            size = B.folder_bytes(keep[1] / "tantivy" / keep[0])
        else:
            size = B.es_store_bytes(url, keep[0])
        again = {
            "engine": engine,
            "corpus": str(corpus),
            "data": str(keep[1]),
            "index": keep[0],
            "url": url,
            "workers": workers,
            "batch": batch,
        }
        incr = timed("index", again, 1, es_pid)
        incr["result"] = incr["result"]["report"]
        cli = cli_incremental(engine, corpus, keep[1], keep[0], url)
        return {
            "engine": engine,
            "index": keep[0],
            "full": full,
            "index_bytes": size,
            "incremental": incr,
            "cli_incremental": cli,
        }
    finally:
        if not KEEP:
            for index, data in made:
                _drop(engine, url, index, data)


def cli_incremental(engine: str, corpus: Path, data: Path, index: str, url: str | None) -> dict:
    """(e') the same re-run as an operator types it: interpreter start, imports, run, report."""
    import subprocess
    import time

    env = {**os.environ, "SEARCH_ENGINE": engine, "SEARCH_DATA_DIR": str(data), "SEARCH_INDEX": index}
    if url:
        env["ELASTICSEARCH_URL"] = url
    cmd = [sys.executable, "-c", "from indexer.cli import main; main()", "--json", "index", str(corpus)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=str(B.ROOT), capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - t0
    if proc.returncode not in (0, 1):  # 1 = finished, some files rejected
        B.log(f"indexer CLI exited {proc.returncode}: {proc.stderr[-500:]}")
    return {"seconds": seconds, "exit": proc.returncode, "command": " ".join(cmd[:1] + ["-m", "indexer.cli"] + cmd[3:])}


def _drop(engine: str, url: str | None, index: str, data: Path) -> None:
    if engine == "elasticsearch" and url:
        B.es_drop(url, index)
    B.rmtree(Path(data))


KEEP = False


def main(argv: list[str] | None = None) -> int:
    global KEEP, QUIET
    a = parse_args(argv)
    KEEP, QUIET = a.keep, a.wait_quiet
    url = B.es_url(a.es_url)
    engines = B.engines_from_arg(a.engine, url)
    if "elasticsearch" in engines:
        problem = B.es_check(url)
        if problem:
            raise SystemExit(f"Elasticsearch at {url} is not usable: {problem}")
    workers = a.workers or os.cpu_count() or 1
    work = Path(tempfile.mkdtemp(prefix="bench-index-"))
    env = B.machine()
    busy = B.busy_processes()
    try:
        corpus, label = B.prepare_corpus(a.corpus, a.posts, work, a.synthetic_cache)
        with B.Clock() as scan_clock:
            args = todo_list(corpus)
        nbytes = warm_page_cache(args)
        B.log(f"{len(args)} files, {nbytes / 1e6:.1f} MB; scan+stat {scan_clock.seconds:.2f} s; {B.load_note()}")
        results: dict = {
            "label": label,
            "corpus": str(corpus),
            "files": len(args),
            "bytes": nbytes,
            "workers": workers,
            "batch_size": a.batch_size,
            "repeat": a.repeat,
            "machine": env,
            "busy_at_start": busy,
            "scan_seconds": scan_clock.seconds,
            "phases": {},
            "engines": {},
        }
        phases = results["phases"]
        if not a.skip_bare:
            B.log(f"(a) bare pipeline, {workers} workers")
            phases["bare_parallel"] = timed("bare_parallel", {"args": args, "workers": workers, "discard": False}, a.repeat)
            if not a.skip_dropped:
                B.log(f"(a') bare pipeline, {workers} workers, results discarded in the workers")
                phases["bare_parallel_discard"] = timed(
                    "bare_parallel", {"args": args, "workers": workers, "discard": True}, a.repeat
                )
            if not a.skip_single:
                B.log("(b) bare pipeline, one core")
                phases["bare_single"] = timed("bare_single", {"args": args}, a.repeat)
        for engine in engines:
            B.log(f"(c) full indexing into {engine}, workers={a.workers or 'default'}")
            results["engines"][engine] = full_run(engine, corpus, work, url, a.workers, a.batch_size, a.repeat)
        out = a.json or B.OUT / f"index-{_slug(label, a)}-{B.stamp()}.json"
        B.finish(results, print_report, out)
    finally:
        if a.keep:
            B.log(f"kept {work}")
        else:
            B.rmtree(work)
    return 0


def _slug(label: str, a: argparse.Namespace) -> str:
    return "corpus" if a.corpus else f"synthetic{a.posts}"


def print_report(r: dict) -> None:
    phases, engines = r["phases"], r["engines"]
    bound = phases.get("bare_parallel")
    bound_rate = bound["result"][1] / bound["median_seconds"] if bound else None
    rows = []

    def row(name, articles, p, index_bytes=None, note="", rate=True):
        secs = p["median_seconds"]
        rate = articles / secs if rate and secs > 0 and articles else None
        cpu = f"{p['cpu_main_s']:.1f} / {p['cpu_children_s']:.1f}"
        if p.get("cpu_es_s") is not None:
            cpu += f" / {p['cpu_es_s']:.1f}"
        rows.append(
            [
                name,
                articles,
                secs,
                rate,
                (rate / bound_rate) if rate and bound_rate else None,
                cpu,
                p["peak_pss_tree_mb"],
                p["peak_rss_tree_mb"],
                p.get("peak_rss_es_mb"),
                B.mb(index_bytes),
                note,
            ]
        )

    if bound:
        row("(a) bare pipeline, all workers", bound["result"][1], bound)
    if "bare_parallel_discard" in phases:
        p = phases["bare_parallel_discard"]
        row("(a') bare, results dropped in workers", p["result"][1], p, note="only a flag crosses processes")
    if "bare_single" in phases:
        p = phases["bare_single"]
        row("(b) bare pipeline, one core", p["result"][1], p)
    for name, e in engines.items():
        rep = e["full"]["result"]["report"]
        row(
            f"(c) full index → {name}",
            rep["indexed"],
            e["full"],
            e["index_bytes"],
            note=f"{rep['rejected']} rejected, {rep['documents']} docs",
        )
        inc = e["incremental"]
        rep2 = inc["result"]
        row(
            f"(e) incremental re-run → {name}",
            rep2["unchanged"],
            inc,
            note=f"indexed {rep2['indexed']}, unchanged {rep2['unchanged']}",
            rate=False,
        )
    for name, e in engines.items():
        cli = e.get("cli_incremental")
        if cli:
            rows.append(
                [
                    f"(e') incremental re-run, `indexer index` CLI → {name}",
                    None,
                    cli["seconds"],
                    None,
                    None,
                    "–",
                    None,
                    None,
                    None,
                    None,
                    f"wall incl. interpreter start and imports; exit {cli['exit']}",
                ]
            )
    print(f"\n### Indexing: {r['label']}\n")
    print(
        f"{r['files']} files, {r['bytes'] / 1e6:.1f} MB, workers={r['workers']}, batch={r['batch_size']}, "
        f"repeat={r['repeat']}, scan+stat {r['scan_seconds']:.2f} s, "
        f"load average at start {r['machine']['loadavg']}, at end {r['machine']['loadavg_end']}; code {r['machine']['code']}\n"
    )
    print(
        B.markdown_table(
            [
                "phase",
                "articles",
                "seconds",
                "articles/s",
                "× bound (a)",
                "CPU s main / workers / ES",
                "peak PSS tree MB",
                "peak RSS tree MB",
                "ES node RSS MB",
                "index MB",
                "note",
            ],
            rows,
        )
    )
    if bound and "bare_single" in phases:
        single = phases["bare_single"]
        print(f"\nparallel speed-up (a)/(b): {single['median_seconds'] / bound['median_seconds']:.2f}× on {r['workers']} workers")
    if bound and "bare_parallel_discard" in phases:
        d = phases["bare_parallel_discard"]
        print(f"IPC share of (a): {(1 - d['median_seconds'] / bound['median_seconds']) * 100:.0f} % of its wall time")
    for name, e in engines.items():
        print(
            f"(e) {name}: incremental re-run {e['incremental']['median_seconds']:.2f} s "
            f"= {e['incremental']['median_seconds'] / e['full']['median_seconds'] * 100:.1f} % of the full run"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    raise SystemExit(main())
