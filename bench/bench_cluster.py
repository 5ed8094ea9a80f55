#!/usr/bin/env python
"""One shard on one node against three shards on three nodes, from the same data, in one run.

Given an Elasticsearch cluster (``--es-url`` or ``ELASTICSEARCH_URL``: a comma list of
its nodes, e.g. from ``scripts/es-node.sh start --nodes 3``), it measures what the
sizing in docs/scaling.md is built from:

  indexing   the project's indexer, as an operator runs it (``indexer --engine
             elasticsearch --json reindex PATH`` in a subprocess, with
             ``ELASTICSEARCH_URL`` naming every node, ``SEARCH_SHARDS=3``,
             ``SEARCH_REPLICAS=0``): articles/s for the cluster, the documents and CPU
             seconds each node took (``_nodes/stats``: works for remote nodes too),
             and the indexer's own CPU.
  bytes      ``_stats/store`` of the primaries right after indexing and, last (after
             the latency), after a force merge (``--force-merge``, default 1 segment
             per shard), per article.
  one shard  a 1-shard copy of the same index on one node of the same cluster, made
             with Elasticsearch's resize APIs instead of indexing twice (which would
             double the longest step and could differ in segment layout): the index
             is write-blocked, cloned (hard links), the clone's shards are moved to
             one node (``index.routing.allocation.require._name``), and the clone is
             shrunk (``_shrink``) to one shard that is required to stay on that node.
             Both indices then hold the same documents in the same segments: what
             differs is only the number of shards and nodes a search fans out to.
  latency    the query mix of bench/bench_search.py (words drawn from the indexed
             titles, each alone and with its top tag, and the empty query), one
             client, sequential, through the layers bench_search.py uses:
               engine_nofacets  the engine alone, hits only
               engine_facets    the engine with the three facets (Elasticsearch's
                                shard request cache on, as in production)
               searcher         the core Searcher (what the app calls), our facet
                                cache on, as in production
               searcher_cold    the same with our facet cache off: every request
                                counts its facets
               app_json         GET /api/search through the Flask app
             in ``--rounds`` interleaved rounds (1 shard, 3 shards, then the other
             way round, ...), so drift in the machine's load hits both alike; each
             query's totals are checked to be equal on both indices.

Prints Markdown tables and writes everything to JSON (``--json``). No timing is
asserted. Elasticsearch indices ``bench-<hex>-*`` are deleted at the end unless
``--keep``; ``--data-dir`` keeps them and the indexer's data for the next run
(which then skips indexing and the copy), ``--drop`` removes them.

  ES=$(scripts/es-node.sh start --nodes 3)
  python bench/bench_cluster.py --es-url "$ES" --posts 20000 --synthetic-cache /tmp/syn20k
  python bench/bench_cluster.py --es-url "$ES" --posts 1000000 --synthetic-cache /tmp/c1m \\
      --data-dir /tmp/cluster-1m --rounds 3 --json bench/out/cluster-1m.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _benchlib as B

MODES = ("engine_nofacets", "engine_facets", "searcher", "searcher_cold", "app_json")
META = "bench-cluster.json"
AUTH_ENV = ("ELASTICSEARCH_USERNAME", "ELASTICSEARCH_PASSWORD", "ELASTICSEARCH_API_KEY", "ELASTICSEARCH_CA_CERTS")
LONG = 4 * 3600  # seconds: force merges and relocations of a million articles take minutes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Indexing rate, bytes per article, and search latency with 1 shard on one node "
        "against N shards on N nodes, from the same data in one run.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    B.add_corpus_args(ap, None, es_url_help="the cluster's nodes, comma-separated (default: $ELASTICSEARCH_URL)")
    ap.add_argument("--shards", type=int, default=0, help="primary shards of the indexed index (0 = one per data node)")
    ap.add_argument("--one-node", help="node name for the 1-shard copy (default: the node that answers on the first URL)")
    ap.add_argument("--force-merge", type=int, default=1, help="merge each shard down to this many segments (0 = no merge)")
    ap.add_argument("--workers", type=int, default=0, help="indexer worker processes (0 = one per core)")
    ap.add_argument("--requests", type=int, default=120, help="timed requests per mode, index and round")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (the order of the two indices alternates)")
    B.add_query_mix_args(ap, MODES, "mode and index")
    ap.add_argument(
        "--adopt",
        metavar="ALIAS",
        help="skip indexing: measure the index behind this alias as it is (e.g. a run stopped part way); "
        "the report gives its size, not an indexing rate",
    )
    ap.add_argument("--data-dir", help="keep the indexer's data and the indices here, and reuse them on the next run")
    ap.add_argument("--drop", action="store_true", help="with --data-dir: delete the indices and the folder at the end")
    ap.add_argument("--keep", action="store_true", help="keep the Elasticsearch indices (without --data-dir)")
    ap.add_argument(
        "--no-latency", action="store_true", help="skip the latency (keep the one --data-dir holds), e.g. to merge only"
    )
    ap.add_argument("--wait-quiet", type=float, default=0, help="wait up to this many seconds for other busy processes first")
    ap.add_argument("--json", help="write the JSON here (default: bench/out/cluster-<label>-<time>.json)")
    return ap.parse_args(argv)


# -- the cluster --------------------------------------------------------------------------


def hosts_of(url: str) -> list[str]:
    """The comma list as searchcore.config reads it."""
    return [u.strip() for u in url.split(",") if u.strip()]


def auth_env() -> dict[str, str]:
    """Credentials from our environment, handed to the indexer and the engine as they are."""
    return {k: os.environ[k] for k in AUTH_ENV if os.environ.get(k)}


def client(url: str):
    """A client over every node, with the credentials the app would use; long timeouts,
    because a force merge or a relocation of a million articles is one request."""
    from elasticsearch import Elasticsearch

    env = auth_env()
    kw: dict[str, Any] = {"request_timeout": LONG}
    if env.get("ELASTICSEARCH_API_KEY"):
        kw["api_key"] = env["ELASTICSEARCH_API_KEY"]
    elif env.get("ELASTICSEARCH_USERNAME"):
        kw["basic_auth"] = (env["ELASTICSEARCH_USERNAME"], env.get("ELASTICSEARCH_PASSWORD", ""))
    if env.get("ELASTICSEARCH_CA_CERTS"):
        kw["ca_certs"] = env["ELASTICSEARCH_CA_CERTS"]
    return Elasticsearch(hosts_of(url), **kw)


def cluster_info(es) -> dict[str, Any]:
    """Name, version, heap and data role of every node: the layout the figures belong to."""
    health = es.cluster.health()
    info = es.nodes.info(metric="jvm,process,settings")
    nodes = {}
    for node_id, n in info["nodes"].items():
        nodes[n["name"]] = {
            "id": node_id,
            "version": n.get("version"),
            "roles": n.get("roles", []),
            "heap_max_bytes": n.get("jvm", {}).get("mem", {}).get("heap_max_in_bytes"),
            "pid": n.get("process", {}).get("id"),
            "http": n.get("http", {}).get("publish_address"),
        }
    return {"cluster_name": health["cluster_name"], "status": health["status"], "nodes": nodes}


def data_nodes(info: dict[str, Any]) -> list[str]:
    return sorted(name for name, n in info["nodes"].items() if any(r.startswith("data") for r in n["roles"]))


def first_node_name(url: str) -> str:
    """The node that answers on the first URL: the 1-shard copy goes there by default."""
    from elasticsearch import Elasticsearch

    first = Elasticsearch(hosts_of(url)[:1], request_timeout=30, **_auth_kw())
    try:
        local = first.nodes.info(node_id="_local", metric="process")
        return next(iter(local["nodes"].values()))["name"]
    finally:
        first.close()


def _auth_kw() -> dict[str, Any]:
    env = auth_env()
    if env.get("ELASTICSEARCH_API_KEY"):
        return {"api_key": env["ELASTICSEARCH_API_KEY"]}
    if env.get("ELASTICSEARCH_USERNAME"):
        return {"basic_auth": (env["ELASTICSEARCH_USERNAME"], env.get("ELASTICSEARCH_PASSWORD", ""))}
    return {}


def node_counters(es) -> dict[str, dict[str, float]]:
    """Per node: documents indexed so far, milliseconds spent indexing, CPU milliseconds of
    the whole process (``_nodes/stats``: remote nodes report theirs too)."""
    stats = es.nodes.stats(metric="indices,process", index_metric="indexing,store")
    out = {}
    for n in stats["nodes"].values():
        idx = n["indices"]["indexing"]
        out[n["name"]] = {
            "index_total": idx["index_total"],
            "index_time_ms": idx["index_time_in_millis"],
            "cpu_ms": n["process"]["cpu"]["total_in_millis"],
            "store_bytes": n["indices"]["store"]["size_in_bytes"],
        }
    return out


def shard_table(es, index: str) -> list[dict[str, str]]:
    return es.cat.shards(index=index, format="json", h="index,shard,prirep,state,docs,store,node")


def segment_count(es, index: str) -> int:
    rows = es.cat.segments(index=index, format="json", h="shard,prirep,segment")
    return sum(1 for r in rows if r.get("prirep") in ("p", "primary"))


def primaries_store(es, index: str) -> int:
    es.indices.refresh(index=index)
    stats = es.indices.stats(index=index, metric="store,docs")
    return int(stats["_all"]["primaries"]["store"]["size_in_bytes"])


def wait_green(es, index: str, what: str) -> None:
    """Wait until every shard of ``index`` is allocated and nothing of it is moving."""
    t0 = time.perf_counter()
    while True:
        h = es.cluster.health(index=index, wait_for_status="green", wait_for_no_relocating_shards=True, timeout="60s")
        if not h.get("timed_out") and h.get("status") == "green" and not h.get("relocating_shards"):
            break
        moving = f"{h.get('relocating_shards')} relocating, {h.get('initializing_shards')} initializing"
        B.log(f"{what}: waiting ({h.get('status')}, {moving})")
    B.log(f"{what}: done in {time.perf_counter() - t0:.0f} s")


# -- indexing ----------------------------------------------------------------------------------------


def run_indexer(url: str, corpus: Path, data_dir: Path, alias: str, shards: int, workers: int) -> dict[str, Any]:
    """The indexer CLI in a subprocess, as an operator types it; wall time, its CPU, its report."""
    env = {
        **os.environ,
        **auth_env(),
        "SEARCH_ENGINE": "elasticsearch",
        "ELASTICSEARCH_URL": url,
        "SEARCH_SHARDS": str(shards),
        "SEARCH_REPLICAS": "0",
        "SEARCH_INDEX": alias,
        "SEARCH_DATA_DIR": str(data_dir),
    }
    cmd = [sys.executable, "-c", "from indexer.cli import main; main()", "--json", "reindex", str(corpus), "--no-progress"]
    if workers:
        cmd += ["--workers", str(workers)]
    ch0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=B.ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    ch1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    # 1 = finished, some files rejected (the synthetic corpus has none; a real one may).
    if proc.returncode not in (0, 1):
        raise SystemExit(f"indexer exited {proc.returncode}: {proc.stdout[-2000:]} {proc.stderr[-2000:]}")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        "seconds": seconds,
        "exit": proc.returncode,
        "cpu_s": (ch1.ru_utime + ch1.ru_stime) - (ch0.ru_utime + ch0.ru_stime),
        "report": report,
        "stderr_tail": proc.stderr[-2000:],
    }


def index_phase(es, url: str, corpus: Path, data_dir: Path, alias: str, shards: int, workers: int, nodes: list[str]) -> dict:
    """Index, then record what each node did, and the bytes before and after the merge."""
    before = node_counters(es)
    B.log(f"indexing {corpus} into {alias} ({shards} shards, 0 replicas) over {len(hosts_of(url))} URLs …")
    run = run_indexer(url, corpus, data_dir, alias, shards, workers)
    after = node_counters(es)
    physical = sorted(es.indices.get_alias(name=alias))[-1]
    docs = int(es.count(index=physical)["count"])
    per_node = {}
    for name in nodes:
        b, a = before.get(name), after.get(name)
        if not b or not a:
            continue
        indexed = a["index_total"] - b["index_total"]
        per_node[name] = {
            "documents": indexed,
            "articles_per_s": indexed / run["seconds"],
            "cpu_s": (a["cpu_ms"] - b["cpu_ms"]) / 1000,
            "indexing_thread_s": (a["index_time_ms"] - b["index_time_ms"]) / 1000,
        }
    out = {
        "alias": alias,
        "physical": physical,
        "shards": shards,
        "documents": docs,
        "seconds": run["seconds"],
        "articles_per_s": docs / run["seconds"],
        "indexer_cpu_s": run["cpu_s"],
        "es_cpu_s": sum(n["cpu_s"] for n in per_node.values()),
        "per_node": per_node,
        "report": run["report"],
        "indexer_exit": run["exit"],
        "placement": shard_table(es, physical),
        "store_bytes_loaded": primaries_store(es, physical),
        "segments_loaded": segment_count(es, physical),
    }
    B.log(f"indexed {docs} articles in {run['seconds']:.0f} s ({out['articles_per_s']:.0f} art/s)")
    return out


def adopt_index(es, alias: str) -> dict[str, Any]:
    """What ``index_phase`` records, for an index someone else filled (no rate: who knows how)."""
    physical = sorted(es.indices.get_alias(name=alias))[-1]
    settings = es.indices.get_settings(index=physical, name="index.number_of_shards")
    return {
        "alias": alias,
        "physical": physical,
        "adopted": True,
        "shards": int(settings[physical]["settings"]["index"]["number_of_shards"]),
        "documents": int(es.count(index=physical)["count"]),
        "placement": shard_table(es, physical),
        "store_bytes_loaded": primaries_store(es, physical),
        "segments_loaded": segment_count(es, physical),
    }


def force_merge(es, index: str, segments: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    B.log(f"force merge {index} to {segments} segment(s) per shard …")
    shards = sum(1 for row in shard_table(es, index) if row.get("prirep") in ("p", "primary"))
    # Measured at a million: one call returned with one shard of three left unmerged
    # (no failure reported); asking again merged it. Ask until every shard is there.
    for _ in range(5):
        es.indices.forcemerge(index=index, max_num_segments=segments)
        if segment_count(es, index) <= shards * segments:
            break
        B.log(f"force merge: {segment_count(es, index)} segments left for {shards} shards; asking again")
    seconds = time.perf_counter() - t0
    return {
        "max_num_segments": segments,
        "seconds": seconds,
        "store_bytes": primaries_store(es, index),
        "segments": segment_count(es, index),
    }


# -- the one-shard copy ---------------------------------------------------------------------------------


def one_shard_copy(es, source: str, alias: str, node: str) -> dict[str, Any]:
    """A 1-shard copy of ``source`` that lives on ``node`` only, under its own alias.

    Elasticsearch shrinks only an index whose shards all sit on one node and that takes
    no writes. Moving the source itself would move it back afterwards (twice the
    copying); a clone is made of hard links, and only its shards move."""
    clone, target = f"{source}-clone", f"{source}-1shard"
    t0 = time.perf_counter()
    previous = es.cluster.get_settings(flat_settings=True).get("persistent", {}).get("indices.recovery.max_bytes_per_sec")
    # The default (40 MB/s) would make moving gigabytes on one disk the slowest step.
    es.cluster.put_settings(persistent={"indices.recovery.max_bytes_per_sec": "1gb"})
    try:
        es.indices.put_settings(index=source, settings={"index.blocks.write": True})
        es.indices.clone(index=source, target=clone, settings={"index.number_of_replicas": 0})
        wait_green(es, clone, "clone")
        es.indices.put_settings(index=clone, settings={"index.routing.allocation.require._name": node})
        wait_green(es, clone, f"moving the clone's shards to {node}")
        where = {row["node"] for row in shard_table(es, clone)}
        if where != {node}:
            raise SystemExit(f"the clone's shards are on {sorted(where)}, not only on {node}")
        es.indices.shrink(
            index=clone,
            target=target,
            settings={
                "index.number_of_shards": 1,
                "index.number_of_replicas": 0,
                "index.routing.allocation.require._name": node,  # stays on that node
                "index.blocks.write": None,
            },
            aliases={alias: {}},
        )
        wait_green(es, target, "shrink")
        es.indices.delete(index=clone)
    finally:
        es.indices.put_settings(index=source, settings={"index.blocks.write": None})
        es.cluster.put_settings(persistent={"indices.recovery.max_bytes_per_sec": previous})
    return {
        "physical": target,
        "alias": alias,
        "node": node,
        "seconds": time.perf_counter() - t0,
        "documents": int(es.count(index=target)["count"]),
        "store_bytes": primaries_store(es, target),
        "segments": segment_count(es, target),
        "placement": shard_table(es, target),
    }


# -- latency ----------------------------------------------------------------------------------------------


def make_layout(url: str, data_dir: Path, alias: str):
    """Engine, Searchers and app clients for one index, as bench_search.py builds them."""
    from searchapp import create_app
    from searchcore.engines import open_engine

    settings = B.make_settings("elasticsearch", data_dir, alias, url, auth_env())
    engine = open_engine(settings)
    overrides = {
        "engine": settings.engine,
        "data_dir": str(settings.data_dir),
        "index": settings.index,
        "elasticsearch_url": settings.elasticsearch_url,
        "elasticsearch_username": settings.elasticsearch_username,
        "elasticsearch_password": settings.elasticsearch_password,
        "elasticsearch_api_key": settings.elasticsearch_api_key,
        "elasticsearch_ca_certs": settings.elasticsearch_ca_certs,
    }
    app = create_app({"SETTINGS_OVERRIDES": overrides, "TESTING": True})
    if app.config["SETTINGS"].index != alias or app.config["SETTINGS"].elasticsearch_hosts != settings.elasticsearch_hosts:
        raise SystemExit("the app's settings name another index or other nodes than the core's")
    return settings, engine, app.test_client()


def make_calls(engine, settings, app_client) -> dict[str, Any]:
    """bench_search.py's calls, plus the core Searcher with its facet cache off."""
    from dataclasses import replace

    import bench_search as S

    from searchcore.search import Searcher, SearchRequest

    calls = S.make_calls(engine, settings, app_client, app_client)
    cold = Searcher(engine, replace(settings, facet_cache=0))
    calls["searcher_cold"] = lambda args: cold.search(SearchRequest.from_args(args)).total
    return calls


def timed(call, mix: list[dict], n: int, start: int) -> tuple[list[float], dict[str, list[float]], float]:
    """``n`` calls, one after another, over the mix from position ``start`` on (each
    round goes on where the last stopped, so every query gets its turn)."""
    samples: list[float] = []
    kinds: dict[str, list[float]] = {}
    t_start = time.perf_counter()
    for i in range(start, start + n):
        q = mix[i % len(mix)]
        t0 = time.perf_counter()
        call(q["args"])
        dt = time.perf_counter() - t0
        samples.append(dt)
        kinds.setdefault(q["kind"], []).append(dt)
    return samples, kinds, time.perf_counter() - t_start


def latency_phase(url: str, data_dir: Path, layouts: dict[str, str], modes: list[str], a: argparse.Namespace) -> dict:
    """The same mix on every layout, interleaved in rounds; totals checked equal."""
    import bench_search as S

    from searchcore.search import Searcher, SearchRequest

    built = {name: make_layout(url, data_dir, alias) for name, alias in layouts.items()}
    first = next(iter(built.values()))
    mix = S.pick_queries(first[1], first[0], a.words, a.seed)
    B.log(f"{len(mix)} queries: " + " | ".join(B.show_args(q["args"]) for q in mix))
    totals = {}
    for name, (settings, engine, _client) in built.items():
        searcher = Searcher(engine, settings)
        totals[name] = [searcher.search(SearchRequest.from_args(q["args"])).total for q in mix]
    names = list(built)
    mismatch = [i for i in range(len(mix)) if len({totals[n][i] for n in names}) > 1]
    for i in mismatch:
        B.log(f"warning: {B.show_args(mix[i]['args'])}: totals differ: " + ", ".join(f"{n} {totals[n][i]}" for n in names))
    calls = {name: make_calls(engine, settings, client_) for name, (settings, engine, client_) in built.items()}
    warmup = a.warmup or 2 * len(mix)
    for name in names:
        for mode in modes:
            for i in range(warmup):
                calls[name][mode](mix[i % len(mix)]["args"])
    samples: dict[str, dict[str, list[float]]] = {n: {m: [] for m in modes} for n in names}
    walls: dict[str, dict[str, float]] = {n: {m: 0.0 for m in modes} for n in names}
    kinds: dict[str, dict[str, dict[str, list[float]]]] = {n: {m: {} for m in modes} for n in names}
    rounds: list[dict[str, Any]] = []
    for r in range(a.rounds):
        order = names if r % 2 == 0 else names[::-1]
        medians: dict[str, dict[str, float]] = {}
        for name in order:
            medians[name] = {}
            for mode in modes:
                s, k, wall = timed(calls[name][mode], mix, a.requests, r * a.requests)
                samples[name][mode] += s
                walls[name][mode] += wall
                for kind, v in k.items():
                    kinds[name][mode].setdefault(kind, []).extend(v)
                medians[name][mode] = B.percentile(sorted(x * 1000 for x in s), 50)
        rounds.append({"order": order, "median_ms": medians, "loadavg": [round(x, 2) for x in os.getloadavg()]})
        B.log(f"round {r + 1}/{a.rounds}: " + "; ".join(f"{n} {medians[n]['engine_nofacets']:.1f} ms" for n in names))
    for _settings, engine, _client in built.values():
        engine.close()
    stats = {}
    for name in names:
        stats[name] = {}
        for mode in modes:
            st = B.latency_stats(samples[name][mode], walls[name][mode])
            st["by_kind_median_ms"] = {k: B.percentile(sorted(v), 50) * 1000 for k, v in kinds[name][mode].items()}
            stats[name][mode] = st
    return {"mix": mix, "totals": totals, "totals_differ": mismatch, "warmup": warmup, "rounds": rounds, "stats": stats}


# -- report --------------------------------------------------------------------------------------------------


def gb(n: float | None) -> float | None:
    return None if n is None else n / 1e9


def print_report(r: dict[str, Any]) -> None:
    cl = r["cluster"]
    ix = r["index"]
    print(f"\n### Cluster: {r['label']}\n")
    print(
        f"cluster {cl['cluster_name']} ({cl['status']}), {len(cl['nodes'])} nodes: "
        + ", ".join(f"{n} (heap {v['heap_max_bytes'] / 2**30:.1f} GiB, {v['version']})" for n, v in sorted(cl["nodes"].items()))
        + f"; code {r['machine']['code']}; {r['machine']['cpus']} cores; load average at start {r['machine']['loadavg']}, "
        f"at end {r['machine'].get('loadavg_end')}\n"
    )
    if ix.get("adopted"):
        print(
            f"**Adopted index** {ix['physical']}: {ix['documents']:,} articles, as it was (no indexing rate: "
            "this run did not fill it).\n"
        )
    if ix.get("seconds"):
        print(
            f"**Indexing** ({ix['shards']} shards, 0 replicas, `indexer reindex`): {ix['documents']:,} articles in "
            f"{ix['seconds']:.0f} s = **{ix['articles_per_s']:.0f} art/s** for the cluster; Elasticsearch CPU "
            f"{1000 * ix['es_cpu_s'] / max(1, ix['documents']):.2f} ms per article (all nodes), the indexer's own "
            f"{1000 * ix['indexer_cpu_s'] / max(1, ix['documents']):.2f} ms.\n"
        )
        rows = [
            [
                n,
                v["documents"],
                v["articles_per_s"],
                v["cpu_s"],
                1000 * v["cpu_s"] / max(1, v["documents"]),
                v["indexing_thread_s"],
            ]
            for n, v in sorted(ix["per_node"].items())
        ]
        print(B.markdown_table(["node", "documents", "art/s", "CPU s", "CPU ms / article", "indexing thread s"], rows))
        print()

    def store_row(label: str, documents: int, store_bytes: int, segments: int, seconds: float | None) -> list:
        return [label, documents, gb(store_bytes), store_bytes / max(1, documents), segments, seconds]

    rows = [store_row("after indexing", ix["documents"], ix["store_bytes_loaded"], ix["segments_loaded"], None)]
    fm = r.get("force_merge")
    if fm:
        label = f"after force merge to {fm['max_num_segments']}"
        rows.append(store_row(label, ix["documents"], fm["store_bytes"], fm["segments"], fm["seconds"]))
    one = r.get("one_shard")
    if one:
        label = f"1-shard copy on {one['node']}"
        rows.append(store_row(label, one["documents"], one["store_bytes"], one["segments"], one["seconds"]))
    print("**Store** (`_stats/store`, primaries):\n")
    print(B.markdown_table(["index", "articles", "GB", "bytes / article", "segments", "seconds"], rows))
    lat = r.get("latency")
    if not lat:
        return
    names = list(lat["stats"])
    modes = list(lat["stats"][names[0]])  # the modes that run timed (an earlier run's, with --no-latency)
    differ = len(lat["totals_differ"])
    print(
        f"\n**Latency**: {len(lat['mix'])} queries, {r['requests']} timed requests per mode, layout and round, "
        f"{r['rounds']} interleaved rounds after {lat['warmup']} warm-up requests, one client, sequential; "
        f"totals {f'DIFFER for {differ} queries' if differ else 'equal on both layouts'}.\n"
    )
    headers = ["mode"]
    for n in names:
        headers += [f"{n} median ms", "p95", "p99", "req/s"]
    headers.append(f"{names[-1]} / {names[0]} median")
    rows = []
    for mode in modes:
        row: list[Any] = [mode]
        for n in names:
            s = lat["stats"][n][mode]
            row += [s["median_ms"], s["p95_ms"], s["p99_ms"], s["rps"]]
        row.append(lat["stats"][names[-1]][mode]["median_ms"] / lat["stats"][names[0]][mode]["median_ms"])
        rows.append(row)
    print(B.markdown_table(headers, rows))
    print("\nSegments searched: " + ", ".join(f"{n} {c}" for n, c in lat.get("segments", {}).items()))
    print("\nMedian ms per round (engine_nofacets / searcher_cold):\n")
    rows = []
    for i, rd in enumerate(lat["rounds"]):
        rows.append(
            [i + 1, " → ".join(rd["order"])]
            + [
                " / ".join(f"{rd['median_ms'][n].get(m, float('nan')):.1f}" for m in ("engine_nofacets", "searcher_cold"))
                for n in names
            ]
            + [" ".join(str(x) for x in rd["loadavg"])]
        )
    print(B.markdown_table(["round", "order"] + names + ["load average after"], rows))
    kinds = list(dict.fromkeys(q["kind"] for q in lat["mix"]))
    mode = "searcher_cold" if "searcher_cold" in modes else modes[0]
    print(f"\nMedian ms by query kind ({mode}):\n")
    rows = [[k] + [lat["stats"][n][mode]["by_kind_median_ms"].get(k, float("nan")) for n in names] for k in kinds]
    print(B.markdown_table(["query kind"] + names, rows))


def ensure_index(
    es, a: argparse.Namespace, url: str, corpus: Path, data_dir: Path, meta: dict[str, Any], shards: int, nodes: list[str]
) -> None:
    """Fill ``meta["index"]``: adopt the index behind ``--adopt``, reuse the one an
    earlier run left in ``--data-dir``, or index the corpus."""
    alias = meta["alias"]
    if a.adopt and not meta.get("index"):
        meta["index"] = adopt_index(es, alias)
        B.log(f"adopted {meta['index']['physical']} ({meta['index']['documents']} articles) as it is")
    elif meta.get("index") and es.indices.exists_alias(name=alias):
        B.log(f"reusing {meta['index']['physical']} ({meta['index']['documents']} articles) from {data_dir}")
    else:
        busy = B.wait_quiet(a.wait_quiet)
        if busy:
            B.log("other busy processes before indexing (figures may be noisy): " + "; ".join(busy))
        meta["busy_before_indexing"] = busy
        meta["index"] = index_phase(es, url, corpus, data_dir / "indexer", alias, shards, a.workers, nodes)


# -- main -----------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    url = B.es_url(a.es_url)
    if not url:
        raise SystemExit("name the cluster: --es-url URL1,URL2,URL3 (or ELASTICSEARCH_URL)")
    modes = [m.strip() for m in a.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise SystemExit(f"unknown mode(s) {bad}; choose from {MODES}")
    es = client(url)
    info = cluster_info(es)
    if info["status"] not in ("green", "yellow"):
        raise SystemExit(f"cluster {info['cluster_name']} is {info['status']}")
    nodes = data_nodes(info)
    shards = a.shards or len(nodes)
    one_node = a.one_node or first_node_name(url)
    if one_node not in nodes:
        raise SystemExit(f"--one-node {one_node} is not a data node of {info['cluster_name']} ({nodes})")
    B.log(f"cluster {info['cluster_name']}: {len(nodes)} data nodes {nodes}; 1-shard copy on {one_node}")
    work = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    data_dir = Path(a.data_dir).resolve() if a.data_dir else work / "data"
    meta_path = data_dir / META
    meta: dict[str, Any] = json.loads(meta_path.read_text()) if a.data_dir and meta_path.exists() else {}
    env = B.machine()
    alias = a.adopt or meta.get("alias") or B.unique_index()
    try:
        cache = a.synthetic_cache or (str(data_dir / f"posts-{a.posts}") if a.data_dir and not a.corpus else None)
        corpus, label = B.prepare_corpus(a.corpus, a.posts, work, cache)
        if meta and meta.get("corpus") != str(corpus):
            raise SystemExit(f"{data_dir} holds indices of {meta.get('corpus')}, not {corpus}: use another --data-dir")
        meta.update({"corpus": str(corpus), "alias": alias})
        data_dir.mkdir(parents=True, exist_ok=True)

        def save() -> None:
            meta_path.write_text(json.dumps(meta, indent=2, default=str))

        ensure_index(es, a, url, corpus, data_dir, meta, shards, nodes)
        save()
        physical, shards = meta["index"]["physical"], meta["index"]["shards"]
        # The copy, then the latency, then the merge: the merge of a million articles
        # takes long on a small machine and only the bytes need it; both layouts are
        # timed on the segments indexing left (the copy has the same ones), as a live
        # index that takes updates has them.
        one_alias = f"{alias}-one"
        copy = meta.get("one_shard")
        if copy and es.indices.exists_alias(name=one_alias) and bool(copy.get("after_merge")) != bool(meta.get("force_merge")):
            # An earlier run merged the source after copying it: the two would no longer
            # hold the same segments. Copy again.
            B.log(f"the 1-shard copy predates the merge of {physical}: copying again")
            es.indices.delete(index=copy["physical"])
            copy = None
        if not (copy and es.indices.exists_alias(name=one_alias)):
            meta["one_shard"] = one_shard_copy(es, physical, one_alias, one_node)
            meta["one_shard"]["after_merge"] = bool(meta.get("force_merge"))
            save()
        # Where the shards are now (the copy must not have moved the source's).
        meta["index"]["placement_at_search"] = shard_table(es, physical)
        busy = B.wait_quiet(a.wait_quiet)
        if busy:
            B.log("other busy processes before timing (figures may be noisy): " + "; ".join(busy))
        layouts = {f"1 shard, {one_node}": one_alias, f"{shards} shards, {len(nodes)} nodes": alias}
        out = a.json or B.OUT / f"cluster-{'corpus' if a.corpus else f'synthetic{a.posts}'}-{B.stamp()}.json"

        def results() -> dict[str, Any]:
            return {
                "label": label,
                "corpus": str(corpus),
                "cluster": info,
                "node_store_bytes": {n: v["store_bytes"] for n, v in node_counters(es).items()},
                "mapping": es.indices.get_mapping(index=physical)[physical]["mappings"],
                "index": meta["index"],
                "force_merge": meta.get("force_merge"),
                "one_shard": meta["one_shard"],
                "busy_before_timing": busy,
                "modes": modes,
                "requests": a.requests,
                "rounds": a.rounds,
                "machine": env,
                "latency": meta.get("latency"),
            }

        if not a.no_latency:
            segments_at_search = {name: segment_count(es, idx) for name, idx in layouts.items()}
            meta["latency"] = latency_phase(url, data_dir / "search", layouts, modes, a)
            meta["latency"]["segments"] = segments_at_search
            save()
            # Written now too: the merge below can take long, and its figures are not these.
            B.write_json("", results(), str(out))
            B.log(f"latency written to {out}")
        if a.force_merge and not meta.get("force_merge"):
            meta["force_merge"] = force_merge(es, physical, a.force_merge)
            save()
        B.finish(results(), print_report, out)
    finally:
        keep = (a.data_dir and not a.drop) or a.keep
        if keep:
            B.log(
                f"indices {alias}-* kept" + (f"; reuse with --data-dir {data_dir} (add --drop to delete)" if a.data_dir else "")
            )
        else:
            es.indices.delete(index=f"{alias}-*", ignore_unavailable=True, allow_no_indices=True)
            if a.data_dir:
                B.rmtree(data_dir)
        es.close()
        B.rmtree(work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
