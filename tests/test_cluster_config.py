"""The Elasticsearch layout an operator chooses (issue 15, item 1): a list of nodes,
shards and replicas, and a reindex that swaps readers only to a green index.

Real parts: a real node (scripts/test.sh starts one), real posts, the real indexer.
The multi-node cluster itself (a node stopped while readers search) is issue 15's
next step; what a single node can prove is proven here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.servers import free_port
from searchcore.config import ConfigError, load_settings
from searchcore.search import Searcher, SearchRequest

from .conftest import cli_env, drop_es_indices, make_settings, require_engine


def test_elasticsearch_url_names_several_nodes_and_the_layout_is_bounded():
    s = load_settings({"ELASTICSEARCH_URL": "http://es1:9200, http://es2:9200,,http://es3:9200", "SEARCH_SHARDS": "3"})
    assert s.elasticsearch_hosts == ["http://es1:9200", "http://es2:9200", "http://es3:9200"]
    assert (s.search_shards, s.elasticsearch_replicas) == (3, 0)
    assert load_settings({"SEARCH_REPLICAS": "1"}).elasticsearch_replicas == 1
    for name, value in (("SEARCH_SHARDS", "0"), ("SEARCH_REPLICAS", "-1"), ("SEARCH_SHARDS", "two")):
        with pytest.raises(ConfigError, match=name):
            load_settings({name: value})


def _posts(folder: Path, n: int, word: str = "经济") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"2024-01-{i % 28 + 1:02d}-p{i}.md").write_text(
            f"---\ntitle: 第{i}篇{word}新闻\ndate: 2024-01-{i % 28 + 1:02d} 10:00:00 +0800\ncategories: c{i % 3}\n---\n"
            f"<p>{word}运行总体平稳，第{i}条。</p>\n",
            encoding="utf-8",
        )
    return folder


@pytest.fixture
def es_settings(tmp_path):
    require_engine("elasticsearch")
    s = make_settings("elasticsearch", tmp_path / "data")
    yield s
    drop_es_indices(s)


def test_a_node_that_cannot_be_reached_costs_no_search(es_settings, tmp_path):
    """One of the listed nodes is down (nothing listens on its port): indexing and
    every search go to the node that answers, none fails."""
    from indexer.pipeline import run
    from searchcore.engines import open_engine

    s = es_settings.with_(elasticsearch_url=f"http://127.0.0.1:{free_port()},{es_settings.elasticsearch_url}")
    assert run(s, _posts(tmp_path / "posts", 12)).indexed == 12
    engine = open_engine(s)
    try:
        totals = [Searcher(engine, s).search(SearchRequest(q="经济")).total for _ in range(12)]
    finally:
        engine.close()
    assert totals == [12] * 12


def test_shards_are_the_operators_and_status_shows_the_layout(es_settings, tmp_path):
    from click.testing import CliRunner

    from indexer.cli import main
    from indexer.pipeline import run
    from searchcore.engines import open_engine

    s = es_settings.with_(search_shards=3)
    assert run(s, _posts(tmp_path / "posts", 30)).indexed == 30
    engine = open_engine(s)
    try:
        layout = engine.layout()
        res = Searcher(engine, s).search(SearchRequest(q="经济"))
    finally:
        engine.close()
    assert (layout["shards"], layout["replicas"]) == (3, 0)
    # counts stay exact across shards
    assert res.total == 30 and {v.value: v.count for v in res.facets["category"].values} == {"c0": 10, "c1": 10, "c2": 10}
    out = CliRunner().invoke(main, ["status"], env=cli_env(s)).output
    assert "layout:    3 shards, 0 replicas on 1 nodes (cluster green)" in out, out


def test_a_reindex_swaps_only_to_a_green_index(es_settings, tmp_path):
    """One replica on a one-node cluster can never be allocated: the new index stays
    yellow, the reindex fails saying so within its timeout, readers stay on the old
    index (alias unchanged, its articles found) and the new one is deleted."""
    from indexer.pipeline import run
    from searchcore.engines import EngineError, open_engine

    s = es_settings
    folder = _posts(tmp_path / "posts", 10)
    assert run(s, folder).indexed == 10
    engine = open_engine(s)
    before = engine.physical_index()
    _posts(folder, 15, word="新闻")  # a rebuild would bring these
    yellow = s.with_(elasticsearch_replicas=1, elasticsearch_green_timeout=2.0)
    with pytest.raises(EngineError, match="readers stay on the old index"):
        run(yellow, folder, rebuild=True)
    try:
        assert engine.physical_index() == before
        assert Searcher(engine, s).search(SearchRequest(q="经济")).total == 10
        names = set(engine.es.indices.get(index=f"{s.index}-*"))
    finally:
        engine.close()
    assert names == {before}


def test_documents_the_engine_cannot_store_fail_the_run_not_their_files(es_settings, tmp_path):
    """A bulk item the node refuses for its own reasons (a shard it cannot reach:
    503, a node stopped during a reindex) is the engine's failure, not the post's:
    the writer stops the run instead of filing the posts as rejected, so a rebuild
    never publishes an index missing them and readers stay on the old one. Made for
    real: the new index is made again with its only shard pinned to a node that
    does not exist (red: every item waits for its shard, then 503)."""
    from indexer.pipeline import run
    from searchcore.engines import EngineUnavailable, open_engine
    from searchcore.engines.elasticsearch_engine import MAPPINGS
    from searchcore.indexing import process_file

    s = es_settings
    folder = _posts(tmp_path / "posts", 10)
    assert run(s, folder).indexed == 10
    engine = open_engine(s)
    before = engine.physical_index()
    articles = [process_file(str(p), p.name, p.stat().st_size, p.stat().st_mtime_ns).article for p in sorted(folder.iterdir())]
    writer = engine.writer(rebuild=True)
    try:
        es = engine.es
        es.indices.delete(index=writer.index)
        nowhere = {"index.routing.allocation.require._name": "nowhere", "number_of_replicas": 0}
        es.indices.create(index=writer.index, mappings=MAPPINGS, settings=nowhere, wait_for_active_shards=0)
        writer.shard_wait = "1s"  # how long a bulk item waits for its shard (default 1m)
        with pytest.raises(EngineUnavailable, match="could not store"):
            writer.upsert(articles)
    finally:
        writer.abort()
    try:
        assert engine.physical_index() == before
        assert Searcher(engine, s).search(SearchRequest(q="经济")).total == 10
    finally:
        engine.close()
