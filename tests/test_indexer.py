"""The indexer on real files, on every engine: bad input, the ledger, exit codes,
incremental runs, deletions, dry runs, rebuilds, and a rebuild killed half-way."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from indexer.cli import main
from indexer.pipeline import Options, run, status
from searchcore.engines import open_engine
from searchcore.search import Searcher, SearchRequest
from synthetic import write_corpus

from .conftest import cli_env

# Generator's names for broken files -> the indexer's rejection kinds.
KIND = {
    "undecodable": {"encoding"},
    "bad_yaml": {"yaml"},
    "missing_title": {"no-title"},
    "no_date": {"no-date"},
    "empty_body": {"empty-body"},
    "binary": {"binary"},
    "html_bomb": {"html-bomb", "empty-body"},
    "oversized": {"too-large"},
}


@pytest.fixture(scope="module")
def broken_corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("broken") / "posts"
    summary = write_corpus(out, 400, seed=5, broken=0.05)
    return out, summary


def cli(settings, *args):
    runner = CliRunner()
    env_args = ["--engine", settings.engine, "--data-dir", str(settings.data_dir), "--index", settings.index]
    env = {"ELASTICSEARCH_URL": settings.elasticsearch_url}
    return runner.invoke(main, [*env_args, *args], env=env, catch_exceptions=False)


def test_bad_files_rejected_one_by_one_good_files_all_indexed(settings, broken_corpus):
    folder, summary = broken_corpus
    res = cli(settings, "index", str(folder), "--max-bytes", str(1536 * 1024), "--no-progress")
    assert res.exit_code == 1, res.output
    ledger = [json.loads(line) for line in (settings.data_dir / "rejected.jsonl").read_text().splitlines()]
    got = {r["path"]: r["kind"] for r in ledger}
    for path, kind in summary["expected_rejected"].items():
        assert got.get(path) in KIND[kind], (path, kind, got.get(path))
    dups = summary["duplicates"]
    rejected_dups = set()
    for copy, original in dups.items():  # exactly one of each pair is kept
        pair = [p for p in (copy, original) if got.get(p) == "duplicate"]
        assert len(pair) == 1, (copy, original)
        rejected_dups.add(pair[0])
    assert set(got) == set(summary["expected_rejected"]) | rejected_dups
    for r in ledger:
        assert f"REJECTED {r['path']}: {r['reason']}" in res.output
    engine = open_engine(settings)
    assert engine.count() == summary["expected_ok"] - len(dups)
    assert f"rejected {len(got)}" in res.output and "articles/s" in res.output
    # The GB18030 and BOM files were decoded and indexed, not rejected.
    awkward = summary["awkward"]
    for path, kind in awkward.items():
        if kind in ("gb18030", "bom", "yaml_lists", "utc_date", "spaces_in_name"):
            assert path not in got
    engine.close()


def _names(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.md"))


def test_incremental_runs_update_delete_and_dry_run(settings, tmp_path):
    folder = tmp_path / "posts"
    write_corpus(folder, 60, seed=21)
    first = run(settings, folder)
    assert (first.indexed, first.rejected) == (60, 0)
    again = run(settings, folder)
    assert (again.indexed, again.unchanged, again.deleted) == (0, 60, 0)

    files = _names(folder)
    changed, removed = files[0], files[1]
    text = changed.read_text(encoding="utf-8").replace("</p>", "独一无二的更正说明。</p>", 1)
    changed.write_text(text, encoding="utf-8")
    removed_id = removed.stem
    removed.unlink()

    dry = run(settings, folder, opts=Options(dry_run=True))
    assert dry.would_delete == [removed.name]
    engine = open_engine(settings)
    searcher = Searcher(engine, settings)
    assert searcher.article(removed_id) is not None  # the dry run deleted nothing

    third = run(settings, folder)
    assert (third.indexed, third.deleted, third.unchanged) == (1, 1, 58)
    assert engine.count() == 59
    assert searcher.article(removed_id) is None
    hits = searcher.search(SearchRequest(q="独一无二的更正说明")).hits
    assert [h.id for h in hits] == [changed.stem]
    engine.close()


def test_reindex_swaps_index_and_drops_the_old_one(settings, tmp_path):
    folder = tmp_path / "posts"
    write_corpus(folder, 40, seed=22)
    run(settings, folder)
    engine = open_engine(settings)
    before = engine.physical_index()
    report = run(settings, folder, rebuild=True)
    after = engine.physical_index()
    assert report.indexed == 40 and after != before
    assert engine.count() == 40
    assert run(settings, folder).unchanged == 40  # the rebuilt manifest is live
    info = status(settings, engine)
    assert info["index"] == after and info["documents"] == 40 and info["healthy"]
    engine.close()


def test_status_and_json_output(settings, tmp_path):
    folder = tmp_path / "posts"
    write_corpus(folder, 10, seed=23)
    res = cli(settings, "--json", "index", str(folder))
    assert res.exit_code == 0
    report = json.loads(res.output)
    assert report["indexed"] == 10 and report["rejected"] == 0
    res = cli(settings, "--json", "status")
    info = json.loads(res.output)
    assert info["documents"] == 10 and info["last_run"]["indexed"] == 10
    res = cli(settings, "status")
    assert "documents: 10" in res.output


def test_source_folder_is_never_written(settings, tmp_path):
    folder = tmp_path / "posts"
    write_corpus(folder, 15, seed=24, broken=0.2)
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*")}
    os.chmod(folder, 0o555)
    try:
        run(settings, folder)
    finally:
        os.chmod(folder, 0o755)
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*")} == before


def test_missing_folder_is_a_clear_error(settings, tmp_path):
    res = CliRunner().invoke(main, ["--data-dir", str(tmp_path), "index", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "does not exist" in res.output


def test_killed_reindex_leaves_readers_on_the_old_index(settings, tmp_path):
    folder = tmp_path / "posts"
    write_corpus(folder, 1500, seed=25)
    run(settings, folder)
    engine = open_engine(settings)
    old = engine.physical_index()
    searcher = Searcher(engine, settings)
    baseline = searcher.search(SearchRequest(q="经济")).total

    env = cli_env(settings)
    cmd = [
        sys.executable,
        "-m",
        "indexer.cli",
        "reindex",
        str(folder),
        "--batch-size",
        "50",
        "--commit-every",
        "100",
        "--workers",
        "1",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not _rebuild_started(settings, engine, old):
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert engine.physical_index() == old
    assert engine.count() == 1500
    assert searcher.search(SearchRequest(q="经济")).total == baseline

    report = run(settings, folder, rebuild=True)
    assert report.indexed == 1500 and engine.physical_index() != old
    assert engine.count() == 1500
    assert searcher.search(SearchRequest(q="经济")).total == baseline
    engine.close()


def _rebuild_started(settings, engine, old) -> bool:
    if settings.engine == "tantivy":
        return len(engine.list_physical()) > 1
    names = engine.es.indices.get(index=f"{settings.index}-*").keys()
    return any(n != old for n in names)


def test_deep_pages_match_shallow_pages(settings, tmp_path):
    """Past the result window Elasticsearch walks with search_after; pages must not change."""
    folder = tmp_path / "posts"
    write_corpus(folder, 90, seed=26)
    run(settings, folder)
    narrow = settings.with_(elasticsearch_max_result_window=25, page_size=10)
    wide = open_engine(settings.with_(page_size=10))
    deep = open_engine(narrow)
    for page in (1, 3, 5, 9):
        req = SearchRequest(sort="newest", page=page)
        a = Searcher(wide, narrow).search(req)
        b = Searcher(deep, narrow).search(req)
        assert [h.id for h in a.hits] == [h.id for h in b.hits] and a.total == b.total == 90
    wide.close()
    deep.close()


def test_refused_documents_are_reported_not_lost(settings, tmp_path):
    """A document the engine refuses is named with the engine's reason; the rest land."""
    from datetime import UTC, datetime

    from searchcore.indexing import index_article
    from searchcore.model import Article

    def article(doc_id: str) -> Article:
        return Article(
            id=doc_id,
            title="测试",
            date=datetime(2022, 1, 1, tzinfo=UTC),
            categories=[],
            tags=[],
            body_html="<p>正文</p>",
            body_text="正文",
            source_url="",
            path=doc_id,
            content_hash=doc_id[:30],
        )

    engine = open_engine(settings)
    writer = engine.writer()
    refused = writer.upsert([index_article(article("ok-1")), index_article(article("x" * 600)), index_article(article("ok-2"))])
    writer.commit()
    if settings.engine == "elasticsearch":  # _id is limited to 512 bytes there
        assert [r[0] for r in refused] == ["x" * 600] and "512 bytes" in refused[0][1]
        assert engine.count() == 2
    else:
        assert refused == [] and engine.count() == 3
    del writer
    engine.close()


def test_explain_is_an_operator_command(settings, tmp_path):
    folder = tmp_path / "posts"
    write_corpus(folder, 30, seed=27)
    run(settings, folder)
    res = cli(settings, "--json", "explain", "经济", "--limit", "3")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["terms"][0]["text"] == "经济" and len(data["hits"]) == 3
    scores = [h["score"] for h in data["hits"]]
    assert scores == sorted(scores, reverse=True)
    assert all(h["explanation"] for h in data["hits"])
    assert "score" in cli(settings, "explain", "经济").output


def test_sigkill_at_random_points_then_rerun_gives_exactly_the_right_documents(settings, tmp_path):
    import random

    folder = tmp_path / "posts"
    write_corpus(folder, 700, seed=28)
    env = cli_env(settings)
    cmd = [sys.executable, "-m", "indexer.cli", "index", str(folder), "--batch-size", "40", "--commit-every", "80"]
    rng = random.Random(7)
    for delay in (rng.uniform(0.5, 2.0), rng.uniform(1.5, 4.0), rng.uniform(2.5, 6.0)):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # Files change and vanish between the crash and the rerun, as they do in real life.
    files = _names(folder)
    files[0].unlink()
    files[1].write_text(files[1].read_text(encoding="utf-8").replace("</p>", "崩溃后修改。</p>", 1), encoding="utf-8")
    report = run(settings, folder)
    assert report.rejected == 0
    engine = open_engine(settings)
    assert engine.count() == 699
    searcher = Searcher(engine, settings.with_(page_size=100))
    seen: list[str] = []
    for page in range(1, 9):
        seen += [h.id for h in searcher.search(SearchRequest(sort="oldest", page=page)).hits]
    assert len(seen) == len(set(seen)) == 699
    assert set(seen) == {p.stem for p in _names(folder)}
    assert [h.id for h in searcher.search(SearchRequest(q="崩溃后修改")).hits] == [files[1].stem]
    engine.close()


def test_symlink_loops_and_unreadable_files_are_reported(settings, tmp_path):
    folder = tmp_path / "posts"
    write_corpus(folder, 5, seed=29)
    (folder / "loop.md").symlink_to(folder / "loop.md")
    (folder / "sub").mkdir()
    (folder / "sub" / "up").symlink_to(folder, target_is_directory=True)  # a folder loop: never followed
    locked = folder / "2020-01-01-locked.md"
    locked.write_text("---\ntitle: t\ndate: 2020-01-01\n---\n<p>x</p>\n", encoding="utf-8")
    locked.chmod(0)
    report = run(settings, folder)
    kinds = {r.path: r.kind for r in report.rejections}
    assert kinds["loop.md"] == "unreadable"
    if os.geteuid() != 0:  # root reads any file
        assert kinds["2020-01-01-locked.md"] == "unreadable"
    assert report.indexed >= 5 and not any(p.startswith("sub/up") for p in kinds)


def test_facet_counts_follow_each_commit(settings, tmp_path):
    """Counts may be cached, but never outlive the index they were counted on."""
    folder = tmp_path / "posts"
    write_corpus(folder, 120, seed=31)
    run(settings, folder)
    engine = open_engine(settings)
    searcher = Searcher(engine, settings)
    req = SearchRequest.from_args({"q": "经济"})

    def tag_counts() -> tuple[int, dict[str, int]]:
        res = searcher.search(req)
        return res.total, {v.value: v.count for f in ("tag", "category", "date") for v in res.facets[f].values}

    def es_cache_hits() -> int:
        stats = engine.es.indices.stats(index=engine.alias, metric="request_cache")
        return stats["_all"]["total"]["request_cache"]["hit_count"]

    before = es_cache_hits() if settings.engine == "elasticsearch" else 0
    total, tags = tag_counts()
    assert tag_counts() == (total, tags)  # asked twice: the same answer, the second from a cache
    if settings.engine == "tantivy":
        assert engine.facet_cache.hits >= 1
    else:  # the counts are a request of their own, kept by the shard request cache
        assert es_cache_hits() > before
    new = folder / "2024-12-30-cache-check.md"
    new.write_text(
        "---\ntitle: 经济新闻缓存检查\ndate: 2024-12-30 10:00:00 +0800\ncategories: [财经]\ntags: [缓存标签]\n---\n"
        "<p>经济数据发布。</p>\n",
        encoding="utf-8",
    )
    run(settings, folder)
    total2, tags2 = tag_counts()
    assert total2 == total + 1
    assert tags2["2024"] == tags.get("2024", 0) + 1
    assert tags2["财经"] == tags.get("财经", 0) + 1
    new.unlink()
    run(settings, folder)
    assert tag_counts() == (total, tags)
    engine.close()


def test_an_index_from_before_the_pairs_fields_asks_for_a_reindex(settings, tmp_path):
    """Upgrading: an old index is refused with the command that fixes it, and that command does."""
    import tantivy

    from searchcore.engines.base import EngineError, IndexMissing

    folder = tmp_path / "posts"
    write_corpus(folder, 30, seed=32)
    engine = open_engine(settings)
    old = f"{settings.index}-20200101000000000000"
    if settings.engine == "tantivy":
        sb = tantivy.SchemaBuilder()
        sb.add_text_field("id", stored=True, tokenizer_name="raw")
        (engine.root / old).mkdir(parents=True)
        tantivy.Index(sb.build(), path=str(engine.root / old))
        engine.set_current(old)
        with pytest.raises(IndexMissing, match="indexer reindex"):
            engine.search(Searcher(engine, settings).engine_query(SearchRequest(q="经济")))
    else:
        engine.es.indices.create(index=old, mappings={"properties": {"body_chars": {"type": "text"}}})
        engine.es.indices.put_alias(index=old, name=settings.index)
    with pytest.raises(EngineError, match="indexer reindex"):
        run(settings, folder)
    report = run(settings, folder, rebuild=True)
    assert report.indexed == 30 and engine.physical_index() != old
    assert Searcher(engine, settings).search(SearchRequest(q="经济")).total > 0
    engine.close()


def test_rejections_that_depend_on_the_options_are_looked_at_again(settings, tmp_path):
    """A file too large for --max-bytes, unchanged, is indexed once the limit allows
    it (so are timeouts, crashes, links outside without --follow-symlinks and
    unreadable files: the next run looks again instead of trusting the manifest)."""
    folder = tmp_path / "posts"
    write_corpus(folder, 10, seed=34)
    big = folder / "2021-06-01-big.md"
    big.write_text("---\ntitle: 大文件\ndate: 2021-06-01\n---\n<p>" + "经济发展" * 3000 + "</p>\n", encoding="utf-8")
    small = Options(max_bytes=16 * 1024)
    first = run(settings, folder, opts=small)
    assert [(r.path, r.kind) for r in first.rejections] == [(big.name, "too-large")]
    assert first.rejections[0].reason == "file is 35 kB, over the 16 kB limit (--max-bytes)"
    again = run(settings, folder, opts=small)
    assert (again.unchanged, again.rejected, again.indexed) == (10, 1, 0)
    larger = run(settings, folder)
    assert (larger.unchanged, larger.rejected, larger.indexed) == (10, 0, 1)
    engine = open_engine(settings)
    assert engine.count() == 11
    engine.close()


def test_elasticsearch_index_settings_are_typed_fields():
    from searchcore.config import Settings, load_settings

    s = load_settings({})
    assert (s.elasticsearch_replicas, s.elasticsearch_max_result_window) == (0, 10000)
    assert not hasattr(Settings(), "extra")  # no untyped side channel (issue 12)


# -- the command line: what reaches the run, and what it prints where ---------------------


@pytest.mark.parametrize(
    "command, own, expected",
    [
        ("index", [], {}),
        ("index", ["--dry-run", "--no-delete"], {"dry_run": True, "delete": False}),
        ("reindex", ["--keep-old"], {"keep_old": True}),
    ],
)
def test_every_option_of_index_and_reindex_reaches_the_run(tmp_path, monkeypatch, command, own, expected):
    """The options index and reindex share, and each one's own, arrive in the
    run's Options field by field, and reindex rebuilds (the real run, watched)."""
    import indexer.pipeline as pipeline

    from .conftest import make_settings

    folder = tmp_path / "posts"
    write_corpus(folder, 5, seed=36)
    seen = []
    real_run = pipeline.run

    def watched(settings, source, rebuild=False, opts=None, progress=None, engine=None):
        seen.append((rebuild, opts))
        return real_run(settings, source, rebuild=rebuild, opts=opts, progress=progress, engine=engine)

    monkeypatch.setattr(pipeline, "run", watched)
    s = make_settings("tantivy", tmp_path / "data")
    shared = ["--workers", "1", "--batch-size", "7", "--commit-every", "9", "--max-bytes", "40960"]
    shared += ["--file-timeout", "2.5", "--follow-symlinks", "--no-progress"]
    res = cli(s, command, str(folder), *shared, *own)
    assert res.exit_code == 0, res.output
    assert seen == [
        (
            command == "reindex",
            Options(workers=1, batch_size=7, commit_docs=9, max_bytes=40960, file_timeout=2.5, follow_symlinks=True, **expected),
        )
    ]


def test_a_run_says_on_stdout_what_it_did_and_on_stderr_what_it_refused(settings, tmp_path):
    folder = tmp_path / "posts"
    write_corpus(folder, 4, seed=37)
    (folder / "2021-06-01-untitled.md").write_text("---\ndate: 2021-06-01\n---\n<p>没有标题</p>\n", encoding="utf-8")
    res = cli(settings, "index", str(folder), "--no-progress")
    assert res.exit_code == 1
    (summary,) = res.stdout.splitlines()  # the summary alone: scripts read it
    assert summary.startswith("read 5, indexed 4, unchanged 0, deleted 0, rejected 1, ")
    ledger = settings.data_dir / "rejected.jsonl"
    assert res.stderr.splitlines()[-2:] == [
        "REJECTED 2021-06-01-untitled.md: " + json.loads(ledger.read_text(encoding="utf-8").splitlines()[0])["reason"],
        f"1 files rejected; ledger: {ledger}",
    ]
    gone = sorted(p for p in folder.iterdir() if "untitled" not in p.name)[0]
    gone.unlink()
    dry = cli(settings, "index", str(folder), "--dry-run", "--no-progress")
    assert dry.stdout.splitlines() == ["dry run: would index 0 changed files and delete 1:", f"  would delete {gone.name}"]


def test_a_run_that_cannot_complete_exits_3_and_says_why(tmp_path):
    """No engine to write to (nothing listens where ELASTICSEARCH_URL points): exit 3,
    the reason on stderr as 'error: ...', or with --json as the one JSON object on stdout."""
    from devtools.servers import free_port

    folder = tmp_path / "posts"
    write_corpus(folder, 2, seed=38)
    base = ["--engine", "elasticsearch", "--data-dir", str(tmp_path / "data")]
    env = {"ELASTICSEARCH_URL": f"http://127.0.0.1:{free_port()}"}
    for command in ("index", "reindex"):
        res = CliRunner().invoke(main, [*base, command, str(folder), "--no-progress"], env=env)
        assert res.exit_code == 3 and res.stdout == ""
        assert res.stderr.splitlines()[-1].startswith(f"error: indexing failed: Elasticsearch at {env['ELASTICSEARCH_URL']}")
        res = CliRunner().invoke(main, [*base, "--json", command, str(folder), "--no-progress"], env=env)
        assert res.exit_code == 3
        error = json.loads(res.stdout)["error"]
        assert error.startswith(f"indexing failed: Elasticsearch at {env['ELASTICSEARCH_URL']}") and "unreachable" in error
