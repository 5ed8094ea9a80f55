#!/usr/bin/env python
"""Search latency per engine: through the Flask app and directly on the core.

Indexes a corpus into each engine (or reuses one, ``--data-dir``), draws realistic
Chinese queries from the indexed titles, then times, one request at a time after a
warm-up, the same query mix in these modes:

  engine_nofacets  ``engine.search(Searcher.engine_query(req, facets=False))``: the baseline
  engine_facets    ``engine.search(Searcher.engine_query(req))``: + category, tag and date facets
  searcher         ``Searcher.search(SearchRequest.from_args(args))``: + highlighting, facet
                   values with their toggle requests, date trail (what the app calls)
  app_html         Flask test client, GET /?... (the full HTML page)
  app_json         Flask test client, GET /api/search?... (the JSON twin)
  app_html_cold    app_html with the facet-count cache off (SEARCH_FACET_CACHE=0): every
                   request counts its facets, as a query seen for the first time does

The mix: one- and two-word queries made of words from the titles (relevance, first
page), each with and without a tag filter (the query's own top tag), plus the empty
query (newest first) with and without a tag filter. Every mode computes facets
except the baseline. Reports median, p95, p99 (ms) and requests/s, side by side for
each engine, and each mode's median as a multiple of the baseline's.

  python bench/bench_search.py --posts 3000
  ELASTICSEARCH_URL=http://127.0.0.1:9200 python bench/bench_search.py --corpus /work/shared/corpus --engine both
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import _benchlib as B

MODES = ("engine_nofacets", "engine_facets", "searcher", "app_html", "app_json", "app_html_cold")
META = "bench-search.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Search latency (median/p95/p99, requests/s) per engine, through the Flask app and on the core Searcher.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    B.add_corpus_args(ap, "engines to measure; elasticsearch needs ELASTICSEARCH_URL (skipped by 'both' when unset)")
    ap.add_argument(
        "--data-dir",
        help="keep the indexes here and reuse them on the next run with the same corpus "
        "(Elasticsearch indices are then kept too; delete them with --drop)",
    )
    ap.add_argument("--drop", action="store_true", help="with --data-dir: delete the indexes (and ES indices) at the end")
    ap.add_argument("--requests", type=int, default=240, help="timed requests per mode and engine")
    B.add_query_mix_args(ap, MODES, "mode and engine")
    ap.add_argument("--wait-quiet", type=float, default=0, help="wait up to this many seconds for other busy processes to finish")
    ap.add_argument("--json", help="write the JSON here (default: bench/out/search-<label>-<time>.json)")
    return ap.parse_args(argv)


# -- indexes --------------------------------------------------------------------------------


def ensure_indexes(engines: list[str], corpus: Path, data_dir: Path, url: str | None, reuse: bool) -> dict[str, dict]:
    """Index ``corpus`` into each engine under ``data_dir``, or reuse what a previous run left there."""
    from indexer.pipeline import run
    from searchcore.engines import open_engine

    meta_path = data_dir / META
    meta = json.loads(meta_path.read_text()) if reuse and meta_path.exists() else {}
    if meta and meta.get("corpus") != str(corpus):
        raise SystemExit(
            f"{data_dir} holds indexes of {meta.get('corpus')}, not {corpus}: use another --data-dir (or --drop it first)"
        )
    meta["corpus"] = str(corpus)
    indexes = meta.setdefault("engines", {})
    for engine in engines:
        info = indexes.get(engine)
        if info:
            settings = B.make_settings(engine, data_dir / engine, info["index"], url)
            eng = open_engine(settings)
            docs = eng.count()
            eng.close()
            if docs > 0:
                B.log(f"reusing {engine} index {info['index']} ({docs} documents)")
                info["documents"] = docs
                continue
        index = B.unique_index()
        settings = B.make_settings(engine, data_dir / engine, index, url)
        B.log(f"indexing {corpus} into {engine} ({index}) …")
        t0 = time.perf_counter()
        report = run(settings, corpus)
        indexes[engine] = {"index": index, "documents": report.documents, "index_seconds": time.perf_counter() - t0}
        B.log(report.summary())
        meta_path.parent.mkdir(parents=True, exist_ok=True)
        meta_path.write_text(json.dumps(meta, indent=2))
    return indexes


# -- the query mix ------------------------------------------------------------------------------


def pick_queries(engine, settings, n_words: int, seed: int) -> list[dict[str, Any]]:
    """Words from the indexed titles, neither rare nor ubiquitous, and the top tag of each."""
    from searchcore.analysis import normalize, query_words
    from searchcore.engines.base import EngineQuery
    from searchcore.search import Searcher, SearchRequest

    sample = engine.search(EngineQuery(limit=2000, sort="newest"))
    titles = [h.doc.title for h in sample.hits]
    df: Counter[str] = Counter()
    per_title: list[list[str]] = []
    for t in titles:
        words = [w for w in dict.fromkeys(query_words(normalize(t))) if len(w) >= 2 and not w.isascii()]
        per_title.append(words)
        df.update(words)
    n = max(1, len(titles))
    lo, hi = max(2, n // 500), max(3, n // 15)  # 0.2 % .. 7 % of the sampled titles
    pool = sorted(w for w, c in df.items() if lo <= c <= hi)
    rng = random.Random(seed)
    words = rng.sample(pool, min(n_words, len(pool)))
    pairs: list[str] = []
    for ws in rng.sample(per_title, len(per_title)):
        cands = [w for w in ws if df[w] >= 2]
        if len(cands) >= 2:
            pair = " ".join(cands[:2])
            if pair not in pairs:
                pairs.append(pair)
        if len(pairs) >= max(1, n_words // 3):
            break
    searcher = Searcher(engine, settings)
    mix: list[dict[str, Any]] = []
    for q in [*words, *pairs, ""]:
        kind = "empty" if not q else ("two words" if " " in q else "one word")
        args = {"q": q} if q else {}
        mix.append({"kind": kind, "args": args})
        res = searcher.search(SearchRequest.from_args(args))
        tags = res.facets["tag"].values
        if tags:
            mix.append({"kind": kind + " + tag", "args": {**args, "tag": [tags[0].value]}})
    return mix


def url_of(path: str, args: dict[str, Any]) -> str:
    return path + ("?" + urlencode(args, doseq=True) if args else "")


# -- timing -----------------------------------------------------------------------------------------


def make_calls(engine, settings, app_client, cold_client) -> dict[str, Any]:
    from searchcore.search import Searcher, SearchRequest

    searcher = Searcher(engine, settings)

    def engine_nofacets(args):
        req = SearchRequest.from_args(args)
        return engine.search(searcher.engine_query(req, facets=False)).total

    def engine_facets(args):
        req = SearchRequest.from_args(args)
        return engine.search(searcher.engine_query(req)).total

    def core(args):
        return searcher.search(SearchRequest.from_args(args)).total

    def page(client, args):
        resp = client.get(url_of("/", args))
        if resp.status_code != 200:
            raise RuntimeError(f"GET / answered {resp.status_code}")
        return len(resp.data)

    def app_json(args):
        resp = app_client.get(url_of("/api/search", args))
        if resp.status_code != 200:
            raise RuntimeError(f"GET /api/search answered {resp.status_code}")
        return resp.get_json()["total"]

    return {
        "engine_nofacets": engine_nofacets,
        "engine_facets": engine_facets,
        "searcher": core,
        "app_html": lambda args: page(app_client, args),
        "app_json": app_json,
        "app_html_cold": lambda args: page(cold_client, args),
    }


def measure(call, mix: list[dict], warmup: int, n: int) -> dict[str, Any]:
    for i in range(warmup):
        call(mix[i % len(mix)]["args"])
    samples: list[float] = []
    kinds: dict[str, list[float]] = {}
    t_start = time.perf_counter()
    for i in range(n):
        q = mix[i % len(mix)]
        t0 = time.perf_counter()
        call(q["args"])
        dt = time.perf_counter() - t0
        samples.append(dt)
        kinds.setdefault(q["kind"], []).append(dt)
    wall = time.perf_counter() - t_start
    stats = B.latency_stats(samples, wall)
    stats["by_kind_median_ms"] = {k: B.percentile(sorted(v), 50) * 1000 for k, v in kinds.items()}
    return stats


def run_engine(engine_name: str, settings, mix: list[dict], modes: list[str], warmup: int, n: int) -> dict[str, Any]:
    from searchapp import create_app
    from searchcore.engines import open_engine
    from searchcore.search import Searcher, SearchRequest

    engine = open_engine(settings)
    overrides = {
        "engine": settings.engine,
        "data_dir": str(settings.data_dir),
        "index": settings.index,
        "elasticsearch_url": settings.elasticsearch_url,
    }
    app = create_app({"SETTINGS_OVERRIDES": overrides, "TESTING": True})
    if app.config["SETTINGS"] != settings:
        B.log("warning: the app's settings differ from the core's (environment variables?)")
    client = app.test_client()
    cold = create_app({"SETTINGS_OVERRIDES": {**overrides, "facet_cache": 0}, "TESTING": True}).test_client()
    calls = make_calls(engine, settings, client, cold)
    # What each query finds (and a check that the app and the core agree).
    searcher = Searcher(engine, settings)
    totals = []
    for q in mix:
        core_total = searcher.search(SearchRequest.from_args(q["args"])).total
        app_total = calls["app_json"](q["args"])
        if core_total != app_total:
            B.log(f"warning: {engine_name} {q['args']}: core total {core_total} != app total {app_total}")
        totals.append(core_total)
    out: dict[str, Any] = {"totals": totals, "modes": {}}
    for mode in modes:
        B.log(f"{engine_name}: {mode} ({warmup} warm-up + {n} timed)")
        out["modes"][mode] = measure(calls[mode], mix, warmup, n)
    engine.close()
    return out


# -- report ---------------------------------------------------------------------------------------------


def print_report(r: dict) -> None:
    engines = list(r["engines"])
    modes = r["modes"]
    print(f"\n### Search latency: {r['label']}\n")
    docs = ", ".join(f"{e}: {r['indexes'][e]['documents']} documents" for e in engines)
    print(
        f"{docs}; {len(r['mix'])} queries in the mix, {r['requests']} timed requests per mode after {r['warmup']} "
        f"warm-up, one client, sequential; load average at start {r['machine']['loadavg']}, "
        f"at end {r['machine']['loadavg_end']}; code {r['machine']['code']}\n"
    )
    headers = ["mode"]
    for e in engines:
        headers += [f"{e} median ms", "p95", "p99", "req/s", "× baseline"]
    rows = []
    for mode in modes:
        row: list[Any] = [mode]
        for e in engines:
            s = r["engines"][e]["modes"][mode]
            base = r["engines"][e]["modes"].get("engine_nofacets")
            ratio = s["median_ms"] / base["median_ms"] if base else None
            row += [s["median_ms"], s["p95_ms"], s["p99_ms"], s["rps"], ratio]
        rows.append(row)
    print(B.markdown_table(headers, rows))
    if len(engines) == 2:
        a, b = engines
        print()
        for mode in modes:
            ma = r["engines"][a]["modes"][mode]["median_ms"]
            mb_ = r["engines"][b]["modes"][mode]["median_ms"]
            print(f"{mode}: {b} median is {mb_ / ma:.2f}× {a}'s")
    # per query kind, median ms
    kinds = list(dict.fromkeys(q["kind"] for q in r["mix"]))
    print("\nMedian ms by query kind (baseline → facets → searcher → app_html):\n")
    headers = ["query kind", "queries"] + [f"{e}" for e in engines]
    rows = []
    for k in kinds:
        row = [k, sum(1 for q in r["mix"] if q["kind"] == k)]
        for e in engines:
            parts = []
            for mode in ("engine_nofacets", "engine_facets", "searcher", "app_html"):
                if mode in r["engines"][e]["modes"]:
                    parts.append(f"{r['engines'][e]['modes'][mode]['by_kind_median_ms'].get(k, float('nan')):.1f}")
            row.append(" → ".join(parts))
        rows.append(row)
    print(B.markdown_table(headers, rows))
    print("\nThe mix (hits per engine):\n")
    rows = []
    for i, q in enumerate(r["mix"]):
        rows.append([q["kind"], B.show_args(q["args"])] + [r["engines"][e]["totals"][i] for e in engines])
    print(B.markdown_table(["kind", "query"] + engines, rows))


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    url = B.es_url(a.es_url)
    engines = B.engines_from_arg(a.engine, url)
    modes = [m.strip() for m in a.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise SystemExit(f"unknown mode(s) {bad}; choose from {MODES}")
    if "engine_nofacets" in modes:
        modes.remove("engine_nofacets")
    modes.insert(0, "engine_nofacets")  # the baseline always runs, first
    if "elasticsearch" in engines:
        problem = B.es_check(url)
        if problem:
            raise SystemExit(f"Elasticsearch at {url} is not usable: {problem}")
    work = Path(tempfile.mkdtemp(prefix="bench-search-"))
    data_dir = Path(a.data_dir).resolve() if a.data_dir else work / "data"
    env = B.machine()
    indexes: dict[str, dict] = {}
    try:
        # With --data-dir, synthetic posts live there too, so the next run finds the same corpus.
        cache = a.synthetic_cache or (str(data_dir / f"posts-{a.posts}") if a.data_dir and not a.corpus else None)
        corpus, label = B.prepare_corpus(a.corpus, a.posts, work, cache)
        indexes = ensure_indexes(engines, corpus, data_dir, url, reuse=bool(a.data_dir))
        busy = B.wait_quiet(a.wait_quiet)
        if busy:
            B.log("other busy processes before timing (figures may be noisy): " + "; ".join(busy))
        from searchcore.engines import open_engine

        settings = {e: B.make_settings(e, data_dir / e, indexes[e]["index"], url) for e in engines}
        first = open_engine(settings[engines[0]])
        mix = pick_queries(first, settings[engines[0]], a.words, a.seed)
        first.close()
        warmup = a.warmup or 2 * len(mix)
        B.log(f"{len(mix)} queries: " + " | ".join(B.show_args(q["args"]) for q in mix))
        results: dict[str, Any] = {
            "label": label,
            "corpus": str(corpus),
            "indexes": indexes,
            "mix": mix,
            "modes": modes,
            "requests": a.requests,
            "warmup": warmup,
            "machine": env,
            "busy_before_timing": busy,
            "engines": {},
        }
        for e in engines:
            results["engines"][e] = run_engine(e, settings[e], mix, modes, warmup, a.requests)
        out = a.json or B.OUT / f"search-{'corpus' if a.corpus else f'synthetic{a.posts}'}-{B.stamp()}.json"
        B.finish(results, print_report, out)
    finally:
        if not a.data_dir or a.drop:
            if a.data_dir and (data_dir / META).exists():  # also what an earlier run left there
                indexes = {**json.loads((data_dir / META).read_text()).get("engines", {}), **indexes}
            if url:
                for e, info in indexes.items():
                    if e == "elasticsearch":
                        B.es_drop(url, info["index"])
            if a.data_dir:
                B.rmtree(data_dir)
        else:
            B.log(f"indexes kept in {data_dir} (reuse with --data-dir {data_dir}; add --drop to delete them)")
        B.rmtree(work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
