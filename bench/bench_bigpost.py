#!/usr/bin/env python
"""What one very large post costs the queries that match it, and its article page.

A post just under the indexer's size limit (``--big-mb``, default 9 MB) is the
cheapest denial of service a contributor has: if a search highlighted or even
loaded its whole body for each request that lists it, every matching query would
slow down with the post's size. This benchmark measures that, per engine, in one run:

1. index ``--posts`` synthetic posts (seed 3) with ``indexer.pipeline.run``;
2. time ``--requests`` GETs of a matching query's whole HTML page through Flask's
   test client (``/?q=生态&sort=newest``, first page, facets and highlights), after
   a warm-up: **without** the big post; again with the highlighter's cache of
   normalized bodies emptied before each request ("cold": what a busy site sees
   once other queries have turned that cache over);
3. add one big post whose title and body match the query (built from the bodies of
   other synthetic posts, ``<p>`` paragraphs, so it is ordinary HTML) and run the
   indexer again (incremental: only the new file is read). It is dated after every
   other post, so it heads the newest-first page on every engine. Elasticsearch
   refuses a bulk request over its indexing-pressure limit (10 % of its heap):
   then the largest post it takes (halving the size) is measured, and said so;
4. time the same page **with** the big post (it is checked to be on that page), warm
   and cold, and a query that does not match the big post;
5. the big post's article page (``/article/<id>``; its first part, and its last
   when the page is split into parts) and its JSON twin: bytes and time;
6. a burst: ``--burst`` threads each ask the matching query at once while this
   thread times the non-matching query: what a reader elsewhere on the site waits.

Prints median and p95 (ms) and the ratio with / without. Nothing is asserted.

  python bench/bench_bigpost.py --engine tantivy
  ELASTICSEARCH_URL=http://127.0.0.1:9200 python bench/bench_bigpost.py --engine both
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import _benchlib as B

QUERY = "生态"  # in about a quarter of the synthetic bodies and a few titles
OTHER = "科技"  # a query the big post never matches (its paragraphs are chosen without it)
BIG_ID = "2025-01-15-big-post"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Query latency with and without one very large matching post, and that post's article page.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--posts", type=int, default=2000, help="synthetic posts (seed 3) indexed beside the big one")
    ap.add_argument("--synthetic-cache", help="folder to write the synthetic posts to, or reuse them from")
    ap.add_argument("--engine", choices=["tantivy", "elasticsearch", "both"], default="both")
    ap.add_argument("--es-url", help="Elasticsearch URL (default: $ELASTICSEARCH_URL)")
    ap.add_argument("--big-mb", type=float, default=9.0, help="size of the big post's file in MB (the limit is 10)")
    ap.add_argument("--requests", type=int, default=50, help="timed requests per measurement")
    ap.add_argument("--warmup", type=int, default=5, help="untimed requests before each measurement")
    ap.add_argument("--article-requests", type=int, default=10, help="timed requests of the big post's article page")
    ap.add_argument("--burst", type=int, default=20, help="threads asking the matching query at once (0: no burst)")
    ap.add_argument("--wait-quiet", type=float, default=0, help="wait up to S seconds for a quiet machine before timing")
    ap.add_argument("--json", help="output file (default bench/out/bigpost-<time>.json)")
    return ap.parse_args(argv)


def big_post(megabytes: float) -> tuple[str, int]:
    """A post of about ``megabytes`` MB whose title and paragraphs say QUERY and never OTHER."""
    from synthetic import make_posts

    target = int(megabytes * 1_000_000)
    head = (
        '---\nlayout: post\ntitle: "生态环境保护长篇调查：生态治理的一百个现场"\n'
        "date: 2025-01-15 08:00:00 +0800\ncategories: xinwenlianbo\ntags: 新闻联播 生态\n---\n"
    )
    parts = [head]
    size = len(head.encode("utf-8"))
    seed = 1000
    while size < target:
        for p in make_posts(500, seed=seed):
            if OTHER in p.body_html or QUERY not in p.body_html:
                continue
            chunk = p.body_html + "\n"
            parts.append(chunk)
            size += len(chunk.encode("utf-8"))
            if size >= target:
                break
        seed += 1
    text = "".join(parts)
    return text, len(text.encode("utf-8"))


def _clear_highlight_cache() -> None:
    """Forget normalized bodies kept by the highlighter, if it keeps any: what a
    busy site sees once other queries have turned its cache over."""
    from searchcore import highlight

    for fn in vars(highlight).values():
        if callable(getattr(fn, "cache_clear", None)):
            fn.cache_clear()


def timed(client, path: str, n: int, warmup: int, cold: bool = False) -> dict[str, Any]:
    for _ in range(warmup):
        client.get(path)
    samples, sizes, statuses = [], set(), set()
    t0 = time.perf_counter()
    for _ in range(n):
        if cold:
            _clear_highlight_cache()
        t = time.perf_counter()
        resp = client.get(path)
        body = resp.get_data()
        samples.append(time.perf_counter() - t)
        sizes.add(len(body))
        statuses.add(resp.status_code)
    stats = B.latency_stats(samples, time.perf_counter() - t0)
    stats["bytes"] = max(sizes)
    stats["status"] = sorted(statuses)
    return stats


def burst(app, path: str, other: str, threads: int) -> dict[str, Any]:
    """``threads`` readers ask ``path`` at the same instant; meanwhile this thread
    times ``other`` back to back until they are all answered."""
    start = threading.Barrier(threads + 1)
    done: list[float] = []

    def reader() -> None:
        c = app.test_client()
        start.wait()
        t = time.perf_counter()
        c.get(path).get_data()
        done.append(time.perf_counter() - t)

    workers = [threading.Thread(target=reader, daemon=True) for _ in range(threads)]
    for w in workers:
        w.start()
    c = app.test_client()
    samples = []
    start.wait()
    t0 = time.perf_counter()
    while len(done) < threads or not samples:
        t = time.perf_counter()
        c.get(other).get_data()
        samples.append(time.perf_counter() - t)
    wall = time.perf_counter() - t0
    for w in workers:
        w.join()
    ms = sorted(s * 1000 for s in samples)
    return {
        "threads": threads,
        "burst_wall_s": wall,
        "burst_median_ms": statistics.median(x * 1000 for x in done),
        "burst_max_ms": max(done) * 1000,
        "other_n": len(ms),
        "other_median_ms": B.percentile(ms, 50),
        "other_max_ms": ms[-1],
    }


def run_engine(engine: str, posts: Path, data_dir: Path, url: str | None, a: argparse.Namespace, big: str) -> dict:
    from indexer.pipeline import run
    from searchapp import create_app

    index = B.unique_index()
    settings = B.make_settings(engine, data_dir / engine, index, url, {"SEARCH_RECENCY_WEIGHT": "0"})
    out: dict[str, Any] = {"index": index}
    try:
        t = time.perf_counter()
        report = run(settings, posts)
        out["index_s"] = time.perf_counter() - t
        out["indexed"] = report.indexed
        overrides = {"engine": engine, "data_dir": settings.data_dir, "index": index, "recency_weight": 0.0}
        if url:
            overrides["elasticsearch_url"] = url
        app = create_app({"SETTINGS_OVERRIDES": overrides})
        client = app.test_client()
        # newest first: the big post (dated after every synthetic one) heads the page
        # on every engine, whatever its relevance score
        page = "/?" + urlencode({"q": QUERY, "sort": "newest"})
        other = "/?" + urlencode({"q": OTHER, "sort": "newest"})
        B.wait_quiet(a.wait_quiet)
        B.log(f"{engine}: timing {page} without the big post")
        out["without"] = timed(client, page, a.requests, a.warmup)
        out["without_cold"] = timed(client, page, a.requests, a.warmup, cold=True)
        out["other_without"] = timed(client, other, a.requests, a.warmup)

        mb = a.big_mb
        while True:
            # Elasticsearch refuses a bulk request over its indexing-pressure limit (10 %
            # of the heap): the 9 MB post's request, with its token streams, is ~55 MB,
            # and a 512 MB node refuses it. Then measure the largest post it takes.
            text = big if mb == a.big_mb else big_post(mb)[0]
            (posts / f"{BIG_ID}.md").write_text(text, encoding="utf-8")
            t = time.perf_counter()
            try:
                report = run(settings, posts)
                why = "; ".join(r.reason for r in report.rejections)[:300]
            except Exception as exc:  # noqa: BLE001 - recorded, then a smaller post
                report, why = None, f"the run failed: {type(exc).__name__}: {str(exc)[:300]}"
            if report is not None and report.indexed == 1:
                break
            out.setdefault("big_failures", []).append(f"{mb} MB: {why}")
            B.log(f"{engine}: the {mb} MB post was not indexed ({why[:120]}); trying {mb / 2} MB")
            mb /= 2
            if mb < 0.5:
                raise SystemExit(f"{engine}: could not index even a {mb * 2} MB post")
        out["big_mb"] = len(text.encode("utf-8")) / 1e6
        out["index_big_s"] = time.perf_counter() - t
        out["big_indexed"] = report.indexed
        data = client.get("/api/search?" + urlencode({"q": QUERY, "sort": "newest"})).get_json()
        out["big_on_page"] = any(h["id"] == BIG_ID for h in data["hits"])
        if not out["big_on_page"]:
            B.log(f"{engine}: the big post is NOT on the first page of {page}: the figure below does not show its cost")
        B.wait_quiet(a.wait_quiet)
        B.log(f"{engine}: timing {page} with the big post")
        out["with"] = timed(client, page, a.requests, a.warmup)
        out["with_cold"] = timed(client, page, a.requests, a.warmup, cold=True)
        out["other_with"] = timed(client, other, a.requests, a.warmup)
        art = f"/article/{quote(BIG_ID)}"
        out["article"] = timed(client, art, a.article_requests, 1)
        first = client.get(art).get_data(as_text=True)
        out["article_parts"] = _parts(first)
        if out["article_parts"]:
            out["article_last"] = timed(client, f"{art}?part={out['article_parts']}", a.article_requests, 1)
        out["api_article"] = timed(client, f"/api/article/{quote(BIG_ID)}", a.article_requests, 1)
        if a.burst:
            B.log(f"{engine}: burst of {a.burst} matching queries")
            out["burst"] = burst(app, page, other, a.burst)
        searcher = app.extensions["newsearch"]["searcher"]
        if searcher is not None:
            searcher.engine.close()
    finally:
        (posts / f"{BIG_ID}.md").unlink(missing_ok=True)
        if engine == "elasticsearch" and url:
            B.es_drop(url, index)
    return out


def _parts(html: str) -> int:
    """The number of parts the article page says it has (0 when it is not split)."""
    import re

    m = re.search(r"第\s*\d+\s*/\s*(\d+)\s*部分", html)
    return int(m.group(1)) if m else 0


def print_report(results: dict[str, Any]) -> None:
    print(
        f"\n## Big post: {results['big_bytes'] / 1e6:.2f} MB post, {results['posts']} other posts,"
        f" code {results['machine']['code']}"
    )
    print(f"{B.load_note()} (start {results['machine']['loadavg']})\n")
    rows = []
    for e, r in results["engines"].items():
        for label, key in (
            (f"q={QUERY} without big post", "without"),
            (f"q={QUERY} without, highlight cache cold", "without_cold"),
            (f"q={QUERY} with big post", "with"),
            (f"q={QUERY} with, highlight cache cold", "with_cold"),
            (f"q={OTHER} without", "other_without"),
            (f"q={OTHER} with (no match)", "other_with"),
            ("article page (part 1)", "article"),
            ("article page (last part)", "article_last"),
            ("/api/article", "api_article"),
        ):
            s = r.get(key)
            if s:
                rows.append([e, label, s["n"], s["median_ms"], s["p95_ms"], s["max_ms"], s["bytes"] / 1024, s["status"]])
    print(B.markdown_table(["engine", "request", "n", "median ms", "p95 ms", "max ms", "KiB", "status"], rows))
    print()
    rows = []
    for e, r in results["engines"].items():
        w, wo = r["with"], r["without"]
        rows.append(
            [
                e,
                r["big_mb"],
                r["big_on_page"],
                w["median_ms"] / wo["median_ms"],
                w["p95_ms"] / wo["p95_ms"],
                r["with_cold"]["median_ms"] / r["without_cold"]["median_ms"],
                r["article"]["bytes"] / 1024,
                r.get("article_parts") or 1,
            ]
        )
    print(
        B.markdown_table(
            [
                "engine",
                "big post MB",
                "on page 1",
                "median with/without",
                "p95 with/without",
                "cold median with/without",
                "article KiB",
                "parts",
            ],
            rows,
        )
    )
    for e, r in results["engines"].items():
        for f in r.get("big_failures", []):
            print(f"{e}: could not index the big post: {f}")
    bursts = [(e, r["burst"]) for e, r in results["engines"].items() if r.get("burst")]
    if bursts:
        print()
        rows = [
            [e, b["threads"], b["burst_median_ms"], b["burst_max_ms"], b["other_n"], b["other_median_ms"], b["other_max_ms"]]
            for e, b in bursts
        ]
        heads = ["engine", "threads", "matching median ms", "matching max ms", f"q={OTHER} n", "its median ms", "its max ms"]
        print(B.markdown_table(heads, rows))


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    url = B.es_url(a.es_url)
    engines = B.engines_from_arg(a.engine, url)
    if "elasticsearch" in engines:
        problem = B.es_check(url)
        if problem:
            raise SystemExit(f"Elasticsearch at {url} is not usable: {problem}")
    work = Path(tempfile.mkdtemp(prefix="bench-bigpost-"))
    try:
        corpus, label = B.prepare_corpus(None, a.posts, work, a.synthetic_cache)
        posts = work / "posts"
        shutil.copytree(corpus, posts)  # the big post is added here, never to a cache
        big, big_bytes = big_post(a.big_mb)
        B.log(f"big post: {big_bytes / 1e6:.2f} MB")
        results: dict[str, Any] = {
            "label": label,
            "posts": a.posts,
            "big_bytes": big_bytes,
            "query": QUERY,
            "other": OTHER,
            "machine": B.machine(),
            "engines": {},
        }
        for e in engines:
            results["engines"][e] = run_engine(e, posts, work / "data", url, a, big)
        B.finish(results, print_report, a.json or B.OUT / f"bigpost-{B.stamp()}.json")
    finally:
        B.rmtree(work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
