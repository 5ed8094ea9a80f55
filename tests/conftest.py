"""Shared fixtures: settings over a temporary data folder, engines (tantivy on disk
and a real Elasticsearch node), an indexed corpus, the app and its client.

Elasticsearch tests need ELASTICSEARCH_URL (scripts/test.sh starts a node and sets
it). Under CI they fail when the node is missing; elsewhere they are skipped and
the run says so loudly at the end.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from searchcore.config import Settings, load_settings

FIXTURES = Path(__file__).parent / "fixtures"
POSTS = FIXTURES / "posts"
ES_URL = os.environ.get("ELASTICSEARCH_URL", "")
REQUIRE_ES = os.environ.get("CI") == "true" or os.environ.get("REQUIRE_ELASTICSEARCH") == "1"
_es_skipped: list[str] = []


def es_available() -> str | None:
    """None if a node answers at ELASTICSEARCH_URL, else why not."""
    if not ES_URL:
        return "ELASTICSEARCH_URL is not set (scripts/test.sh starts a node where Java and Maven exist)"
    try:
        from elasticsearch import Elasticsearch

        es = Elasticsearch(ES_URL, request_timeout=5)
        es.cluster.health()  # the test distribution answers 405 to GET /
        es.close()
    except Exception as exc:  # noqa: BLE001
        return f"no Elasticsearch at {ES_URL}: {type(exc).__name__}"
    return None


_ES_PROBLEM = es_available()


def require_engine(name: str) -> None:
    if name == "elasticsearch" and _ES_PROBLEM:
        if REQUIRE_ES:
            pytest.fail(f"Elasticsearch is required here (CI) but missing: {_ES_PROBLEM}")
        _es_skipped.append(name)
        pytest.skip(_ES_PROBLEM)


ENGINE_NAMES = ["tantivy", "elasticsearch"]


def make_settings(engine: str, data_dir: Path, **kw) -> Settings:
    index = kw.pop("index", f"t{uuid.uuid4().hex[:10]}")
    env = {"SEARCH_ENGINE": engine, "SEARCH_DATA_DIR": str(data_dir), "SEARCH_INDEX": index, "SEARCH_RECENCY_WEIGHT": "0"}
    if ES_URL:
        env["ELASTICSEARCH_URL"] = ES_URL
    return load_settings(env, **kw)


def app_overrides(settings: Settings, **extra) -> dict:
    """SETTINGS_OVERRIDES that point an app at a test's index (recency off, as the
    relevance tests expect, unless ``extra`` says otherwise)."""
    overrides = {"engine": settings.engine, "data_dir": settings.data_dir, "index": settings.index, "recency_weight": 0.0}
    if settings.engine == "elasticsearch":
        overrides["elasticsearch_url"] = settings.elasticsearch_url
    return {**overrides, **extra}


def cli_env(settings: Settings) -> dict[str, str]:
    """The environment that points an `indexer` process at a test's index."""
    return dict(
        os.environ,
        SEARCH_ENGINE=settings.engine,
        SEARCH_DATA_DIR=str(settings.data_dir),
        SEARCH_INDEX=settings.index,
        ELASTICSEARCH_URL=settings.elasticsearch_url,
    )


def drop_es_indices(settings: Settings) -> None:
    if settings.engine != "elasticsearch":
        return
    from elasticsearch import Elasticsearch

    es = Elasticsearch(settings.elasticsearch_hosts, request_timeout=30)
    try:
        es.indices.delete(index=f"{settings.index}-*", ignore_unavailable=True, allow_no_indices=True)
    finally:
        es.close()


@pytest.fixture(params=ENGINE_NAMES)
def engine_name(request) -> str:
    require_engine(request.param)
    return request.param


@pytest.fixture
def settings(engine_name, tmp_path):
    s = make_settings(engine_name, tmp_path / "data")
    yield s
    drop_es_indices(s)


@pytest.fixture(scope="session")
def synthetic_corpus(tmp_path_factory) -> Path:
    """300 clean synthetic posts, shared read-only by the whole session."""
    from synthetic import write_corpus

    out = tmp_path_factory.mktemp("synthetic") / "posts"
    write_corpus(out, 300, seed=11)
    return out


@pytest.fixture(scope="session")
def mixed_corpus(tmp_path_factory, synthetic_corpus) -> Path:
    """The hand-written edge cases plus the synthetic posts."""
    out = tmp_path_factory.mktemp("mixed") / "posts"
    shutil.copytree(synthetic_corpus, out)
    for p in POSTS.iterdir():
        shutil.copy(p, out / p.name)
    return out


@pytest.fixture(scope="module", params=ENGINE_NAMES)
def indexed(request, tmp_path_factory, mixed_corpus):
    """(settings, engine) with the mixed corpus indexed; read-only for tests."""
    require_engine(request.param)
    from indexer.pipeline import run
    from searchcore.engines import open_engine

    s = make_settings(request.param, tmp_path_factory.mktemp("idx") / "data")
    report = run(s, mixed_corpus)
    assert report.indexed > 300, report.summary()
    engine = open_engine(s)
    yield s, engine
    engine.close()
    drop_es_indices(s)


@pytest.fixture(scope="module")
def app(indexed):
    from searchapp import create_app

    s, _ = indexed
    application = create_app({"TESTING": True, "SETTINGS_OVERRIDES": app_overrides(s)})
    return application


@pytest.fixture
def client(app):
    return app.test_client()


def pytest_terminal_summary(terminalreporter):
    # One line per engine, so a CI log shows the contract suite ran on both.
    for engine in ENGINE_NAMES:
        counts = {}
        for outcome in ("passed", "failed", "skipped", "error"):
            counts[outcome] = sum(1 for r in terminalreporter.stats.get(outcome, []) if f"[{engine}" in r.nodeid)
        if any(counts.values()):
            terminalreporter.write_line(
                f"engine {engine}: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"
            )
    if _es_skipped:
        terminalreporter.write_sep(
            "!",
            f"Elasticsearch NOT tested ({len(_es_skipped)} tests skipped): {_ES_PROBLEM}. Ran on tantivy alone.",
            red=True,
            bold=True,
        )
