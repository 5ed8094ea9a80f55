#!/usr/bin/env python
"""Where the Elasticsearch index's bytes go, per field, per article.

Indexes a corpus (synthetic posts, seed 3, by default; or ``--corpus``) with the
project's own indexer (``indexer.pipeline.run``) into a fresh Elasticsearch index,
force-merges it to one segment (so two runs compare the same thing: no half-merged
segments, no deleted documents, recovery copies pruned where the node prunes them),
then asks the node's ``_disk_usage`` API (``run_expensive_tasks=true``) what each
field costs: inverted index (terms, postings, positions), stored fields (``_source``
and ``_id``), doc values, points, norms, term vectors, knn vectors. Prints them per
field and per article, with the whole store size from ``_stats`` (what a disk holds,
Lucene's per-file overhead included).

For comparison it also indexes the same corpus into tantivy and reports the size of
its index folder after the indexer's commit and merges (``--no-tantivy`` skips it).

  ELASTICSEARCH_URL=$(scripts/es-node.sh start) python bench/es_disk_usage.py --posts 20000 \\
      --synthetic-cache /tmp/syn20k
  python bench/es_disk_usage.py --posts 20000 --json bench/out/disk.json

``_disk_usage`` is a technical-preview API: its figures are what Lucene's files hold,
attributed to fields by reading them; the ``_stats`` store size is the ground truth.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _benchlib as B

# the parts _disk_usage reports for every field, in the order the table shows them
PARTS = (
    ("inverted_index", "inverted"),
    ("stored_fields", "stored"),
    ("doc_values", "doc values"),
    ("points", "points"),
    ("norms", "norms"),
    ("term_vectors", "term vectors"),
    ("knn_vectors", "knn"),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Bytes per article of the Elasticsearch index, per field (_disk_usage after a force merge).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    B.add_corpus_args(ap, None, posts=20000)
    ap.add_argument("--no-tantivy", action="store_true", help="skip the tantivy comparison")
    ap.add_argument("--keep", action="store_true", help="keep the Elasticsearch index and the temp folder")
    ap.add_argument("--json", nargs="?", const="-", help="write JSON to this path ('-' or no value: stdout, no tables)")
    return ap.parse_args(argv)


def _part_bytes(stats: dict[str, Any], part: str) -> int:
    """One part of a field's (or all fields') usage: ``inverted_index`` is an object
    with ``total_in_bytes``, the others are ``<part>_in_bytes`` numbers."""
    if part == "inverted_index":
        return int(stats.get("inverted_index", {}).get("total_in_bytes", 0))
    return int(stats.get(f"{part}_in_bytes", 0))


def field_rows(usage: dict[str, Any], docs: int) -> list[dict[str, Any]]:
    """Per field: total bytes, its parts, and bytes per article; largest first."""
    rows = []
    for name, stats in usage["fields"].items():
        row: dict[str, Any] = {"field": name, "total": int(stats.get("total_in_bytes", 0))}
        for part, _label in PARTS:
            row[part] = _part_bytes(stats, part)
        row["per_article"] = row["total"] / docs if docs else None
        rows.append(row)
    rows.sort(key=lambda r: -r["total"])
    return rows


def _store(es: Any, index: str) -> int:
    """The primaries' store size (_stats): what the index takes on disk."""
    return int(es.indices.stats(index=index, metric="store")["_all"]["primaries"]["store"]["size_in_bytes"])


def wait_for_leases(es: Any, index: str, timeout: float = 120.0) -> float:
    """Wait until every shard's retention leases retain nothing below its last
    operation, so the force merge prunes every ``_recovery_source`` copy (a merge
    keeps the copies a lease still retains; leases are renewed every 30 s). Without
    this wait the figure would depend on how soon after the load the merge ran.
    Returns the seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        shards = es.indices.stats(index=index, level="shards", metric="docs")["indices"][index]["shards"]
        pending = False
        for copies in shards.values():
            for copy in copies:
                top = int(copy["seq_no"]["max_seq_no"])
                leases = copy.get("retention_leases", {}).get("leases", [])
                if any(int(lease["retaining_seq_no"]) <= top for lease in leases):
                    pending = True
        if not pending:
            break
        time.sleep(1.0)
    return time.monotonic() - t0


def measure_es(url: str, corpus: Path, work: Path, keep: bool) -> dict[str, Any]:
    """Index with the project's indexer, force-merge to one segment, read _disk_usage
    and _stats. The mapping and settings are the engine's own (MAPPINGS, _create)."""
    from indexer.pipeline import run

    alias = B.unique_index()
    settings = B.make_settings("elasticsearch", work / "es-data", alias, url)
    t0 = time.perf_counter()
    report = run(settings, corpus).to_dict()
    index_s = time.perf_counter() - t0
    es = B.es_client(url).options(request_timeout=1800)
    try:
        physical = sorted(es.indices.get_alias(name=alias).keys())[-1]
        es.indices.refresh(index=physical)
        es.indices.flush(index=physical, wait_if_ongoing=True)
        left = _store(es, physical)  # as the indexer leaves it: its merges, unforced
        lease_s = wait_for_leases(es, physical)
        t1 = time.perf_counter()
        es.indices.forcemerge(index=physical, max_num_segments=1, wait_for_completion=True)
        merge_s = time.perf_counter() - t1
        es.indices.refresh(index=physical)
        docs = int(es.count(index=physical)["count"])
        segments = es.indices.segments(index=physical)["indices"][physical]["shards"]
        seg_count = sum(len(copy["segments"]) for copies in segments.values() for copy in copies)
        usage = es.perform_request(
            "POST", f"/{physical}/_disk_usage", params={"run_expensive_tasks": "true"}, headers={"accept": "application/json"}
        ).body[physical]
        store = _store(es, physical)
        index_settings = es.indices.get_settings(index=physical)[physical]["settings"]["index"]
        mapping = es.indices.get_mapping(index=physical)[physical]["mappings"]
    finally:
        if not keep:
            es.indices.delete(index=f"{alias}-*", ignore_unavailable=True, allow_no_indices=True)
        es.close()
    all_fields = usage["all_fields"]
    return {
        "index": physical,
        "kept": keep,
        "documents": docs,
        "segments": seg_count,
        "index_seconds": index_s,
        "forcemerge_seconds": merge_s,
        "run": {k: report.get(k) for k in ("indexed", "rejected", "unchanged", "seconds", "rejections")},
        "store_bytes_as_indexed": left,
        "lease_wait_seconds": lease_s,
        "store_bytes": store,
        "store_per_article": store / docs if docs else None,
        "disk_usage_total_bytes": int(usage.get("store_size_in_bytes", 0)),
        "all_fields": {"total": int(all_fields.get("total_in_bytes", 0)), **{p: _part_bytes(all_fields, p) for p, _ in PARTS}},
        "fields": field_rows(usage, docs),
        "codec": index_settings.get("codec", "default"),
        "source_mapping": mapping.get("_source", {}),
    }


def measure_tantivy(corpus: Path, work: Path) -> dict[str, Any]:
    """The same corpus through the indexer into tantivy: its index folder's bytes
    after the indexer's last commit and its wait for merges (no forced merge: tantivy
    keeps the segments its merge policy leaves)."""
    from indexer.pipeline import run

    data = work / "tantivy-data"
    alias = B.unique_index()
    settings = B.make_settings("tantivy", data, alias, None)
    report = run(settings, corpus).to_dict()
    folder = data / "tantivy" / alias
    size = B.folder_bytes(folder)
    docs = int(report.get("indexed") or 0)
    segments = 0
    for meta in folder.glob("*/meta.json"):
        segments = max(segments, len(json.loads(meta.read_text()).get("segments", [])))
    return {"documents": docs, "bytes": size, "per_article": size / docs if docs else None, "segments": segments}


def report(res: dict[str, Any]) -> None:
    es = res.get("elasticsearch")
    print(f"\n## {res['corpus']}\n")
    if es:
        n = es["documents"]
        print(
            f"Elasticsearch {res['es_version']}: {n} documents, {es['segments']} segment(s), codec {es['codec']}, "
            f"_source {json.dumps(es['source_mapping'], ensure_ascii=False) or '{}'}\n"
        )
        headers = ["field", "bytes/article", "total bytes", *(label for _p, label in PARTS)]
        rows = [[r["field"], r["per_article"], r["total"], *(r[p] / n for p, _ in PARTS)] for r in es["fields"]]
        af = es["all_fields"]
        rows.append(["**all fields**", af["total"] / n, af["total"], *(af[p] / n for p, _ in PARTS)])
        if es["run"].get("rejected"):
            print(f"rejected by the run: {json.dumps(es['run']['rejections'], ensure_ascii=False, default=str)}\n")
        print("Parts in bytes per article.\n")
        print(B.markdown_table(headers, rows))
        print(
            f"\nstore (_stats, primaries): {es['store_bytes']:,} bytes = {es['store_per_article']:,.0f} bytes/article"
            f" ({es['store_bytes'] / 2**20:.1f} MiB); _disk_usage total {es['disk_usage_total_bytes']:,}"
        )
        print(
            f"as the indexer left it (before the force merge): {es['store_bytes_as_indexed'] / n:,.0f} bytes/article;"
            f" waited {es['lease_wait_seconds']:.0f} s for the retention leases"
        )
    tv = res.get("tantivy")
    if tv:
        print(
            f"tantivy folder: {tv['bytes']:,} bytes = {tv['per_article']:,.0f} bytes/article "
            f"({tv['documents']} documents, {tv['segments']} segment(s))"
        )
        if es:
            print(f"Elasticsearch store / tantivy folder: {es['store_bytes'] / tv['bytes']:.2f}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    url = B.es_url(args.es_url)
    if not url:
        raise SystemExit("needs ELASTICSEARCH_URL (or --es-url): e.g. ES_URL=$(scripts/es-node.sh start)")
    problem = B.es_check(url)
    if problem:
        raise SystemExit(f"Elasticsearch at {url}: {problem}")
    work = Path(tempfile.mkdtemp(prefix="bench-disk-"))
    try:
        corpus, label = B.prepare_corpus(args.corpus, args.posts, work, args.synthetic_cache)
        es = B.es_client(url)
        # the test distribution answers 405 to GET /: the local node tells its version
        version = next(iter(es.nodes.info(node_id="_local", metric="_none")["nodes"].values()), {}).get("version", "?")
        es.close()
        res: dict[str, Any] = {
            "corpus": label,
            "corpus_bytes": B.corpus_bytes(corpus),
            "git": B.git_state(),
            "es_version": version,
            "elasticsearch": measure_es(url, corpus, work, args.keep),
        }
        if not args.no_tantivy:
            res["tantivy"] = measure_tantivy(corpus, work)
    finally:
        if not args.keep:
            B.rmtree(work)
    if args.json:
        text = json.dumps(res, ensure_ascii=False, indent=2)
        if args.json == "-":
            print(text)
        else:
            B.write_json("", res, args.json)
            report(res)
            B.log(f"JSON written to {args.json}")
    else:
        report(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
