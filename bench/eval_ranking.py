"""nDCG@10 and P@5 per kind of query on the graded set, for this checkout.

Indexes the hand-written ranking posts (tests/fixtures/ranking) and 300 synthetic
distractors (seed 11) into each engine, runs every query of
tests/fixtures/graded.yaml through ``Searcher`` (recency weight 0, as the tests)
and prints one Markdown table: per kind, nDCG@10 and P@5 on each engine, plus
the string-count baseline (``ranking_eval.baseline_ranking``, no engine).

    python bench/eval_ranking.py                      # tantivy, plus Elasticsearch if ELASTICSEARCH_URL answers
    python bench/eval_ranking.py --engine tantivy --json bench/out/ranking.json
    python bench/eval_ranking.py --pool               # the pool: top 10 of each ranking, unjudged ones marked

To measure another checkout (the ranking "before"), copy devtools/__init__.py,
devtools/ranking_eval.py, tests/fixtures/ranking, tests/fixtures/graded.yaml and
this file into it and run it there with PYTHONPATH pointing at that checkout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from devtools import ranking_eval as ev  # noqa: E402


def es_url() -> str | None:
    url = os.environ.get("ELASTICSEARCH_URL", "")
    if not url:
        return None
    try:
        from elasticsearch import Elasticsearch

        es = Elasticsearch(url, request_timeout=5)
        es.cluster.health()
        es.close()
    except Exception:  # noqa: BLE001
        return None
    return url


def settings_for(engine: str, data_dir: Path, url: str | None):
    import uuid

    from searchcore.config import load_settings

    env = {
        "SEARCH_ENGINE": engine,
        "SEARCH_DATA_DIR": str(data_dir),
        "SEARCH_INDEX": f"rk{uuid.uuid4().hex[:10]}",
        "SEARCH_RECENCY_WEIGHT": "0",
    }
    if url:
        env["ELASTICSEARCH_URL"] = url
    return load_settings(env)


def rank_on(engine: str, corpus: Path, work: Path, url: str | None, queries) -> dict[str, list[str]]:
    from indexer.pipeline import run
    from searchcore.engines import open_engine
    from searchcore.search import Searcher

    s = settings_for(engine, work / engine, url)
    report = run(s, corpus)
    assert report.indexed > ev.SYNTHETIC_POSTS, report.summary()
    eng = open_engine(s)
    try:
        return ev.engine_rankings(Searcher(eng, s), queries)
    finally:
        eng.close()
        if engine == "elasticsearch":
            from elasticsearch import Elasticsearch

            es = Elasticsearch(url, request_timeout=30)
            es.indices.delete(index=f"{s.index}-*", ignore_unavailable=True, allow_no_indices=True)
            es.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine", choices=["tantivy", "elasticsearch", "both"], default="both")
    ap.add_argument("--json", help="also write the figures (per kind, overall, per query) to this file")
    ap.add_argument("--pool", action="store_true", help="print each query's pool (engine and baseline top 10) with the grades")
    ap.add_argument("--label", default="", help="a label for the table (default: the checkout's commit)")
    args = ap.parse_args(argv)

    queries = ev.load_graded()
    url = es_url()
    engines = ["tantivy", "elasticsearch"] if args.engine == "both" else [args.engine]
    if "elasticsearch" in engines and not url:
        if args.engine == "elasticsearch":
            raise SystemExit("no Elasticsearch answers at ELASTICSEARCH_URL")
        print("(Elasticsearch: ELASTICSEARCH_URL unset or not answering; tantivy only)", file=sys.stderr)
        engines.remove("elasticsearch")
    label = (
        args.label
        or subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    )

    with tempfile.TemporaryDirectory(prefix="eval-ranking-") as tmp:
        work = Path(tmp)
        corpus = ev.build_corpus(work / "posts")
        rankings = {e: rank_on(e, corpus, work, url, queries) for e in engines}
        posts = ev.read_posts(corpus)
    rankings["baseline"] = {item["q"]: ev.baseline_ranking(item["q"], posts) for item in queries}
    figures = {name: ev.score(r, queries) for name, r in rankings.items()}

    if args.pool:
        for item in queries:
            print(f"\n## {item['q']}  [{item['kind']}]  {item['need']}")
            pool = dict.fromkeys(d for r in rankings.values() for d in r[item["q"]])
            for d in pool:
                where = ",".join(f"{n[0]}{r[item['q']].index(d) + 1}" for n, r in rankings.items() if d in r[item["q"]])
                grade = item["judgments"].get(d, "UNJUDGED")
                print(f"  {grade!s:>8}  {d}  ({where})  {posts.get(d, ('?',))[0][:40]}")
    roles = ev.load_roles()
    found = {name: ev.intrusions(r, queries, roles) for name, r in rankings.items()}
    print(ev.table(figures, f"graded set, {len(queries)} queries, checkout {label}"))
    print("\nposts built around a finding, judged 0, in the top 5 / above the best article (summed over queries)\n")
    print("| finding | " + " | ".join(found) + " |")
    print("| --- | " + " | ".join("---:" for _ in found) + " |")
    for f, what in ev.FINDINGS.items():
        print(f"| {what} | " + " | ".join(f"{found[n][f]['top5']} / {found[n][f]['above_best']}" for n in found) + " |")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(
            json.dumps(
                {"label": label, "figures": {n: f.as_dict() for n, f in figures.items()}, "findings": found},
                ensure_ascii=False,
                indent=1,
            ),
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
