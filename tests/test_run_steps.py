"""The indexing run one step at a time (``indexer.pipeline.IndexRun``): the plan of
a folder against a manifest, the pure decision on each processed file, the
write-ahead and the commit policy, and finish. Real files in temporary folders and
a real tantivy index; the whole run on both engines is tests/test_indexer.py's."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from indexer.manifest import Entry
from indexer.pipeline import Decision, IndexRun, Options, decide, run
from searchcore.indexing import FileOutcome, process_file

from .conftest import make_settings


def post(title: str, body: str = "<p>今天的新闻正文。</p>") -> str:
    return f"---\ntitle: {title}\ndate: 2024-03-01 08:00:00 +0800\n---\n{body}\n"


def write_posts(folder: Path, **posts: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for stem, title in posts.items():
        (folder / f"{stem}.md").write_text(post(title, f"<p>{title}的正文。</p>"), encoding="utf-8")


def outcome(folder: Path, name: str) -> FileOutcome:
    """What a worker hands back for ``folder/name``."""
    path = folder / name
    st = path.stat()
    return process_file(str(path), name, st.st_size, st.st_mtime_ns, root=str(folder))


def entry(o: FileOutcome, status: str = "indexed", **changes) -> Entry:
    a = o.article.article
    e = Entry(o.relpath, o.size, o.mtime_ns, o.file_hash, a.id, a.content_hash, status, None, None)
    for k, v in changes.items():
        setattr(e, k, v)
    return e


@pytest.fixture
def settings(tmp_path):
    return make_settings("tantivy", tmp_path / "data")


@pytest.fixture
def folder(tmp_path) -> Path:
    out = tmp_path / "posts"
    write_posts(out, a="第一篇", b="第二篇", c="第三篇")
    return out


# -- decide: pure --------------------------------------------------------------------

nobody = {}.get


def never(key: str) -> str | None:
    raise AssertionError(f"looked up {key!r} when the answer was already known")


def test_decide_new_file_is_indexed(folder):
    o = outcome(folder, "a.md")
    assert decide(o, None, nobody, nobody) == Decision("index")


def test_decide_same_file_again_is_unchanged_without_a_lookup(folder):
    o = outcome(folder, "a.md")
    assert decide(o, entry(o), never, never) == Decision("unchanged")
    # Not unchanged: another status, another hash, another id.
    assert decide(o, entry(o, "pending"), nobody, nobody) == Decision("index")
    assert decide(o, entry(o, file_hash="0" * 32), nobody, nobody) == Decision("index")
    assert decide(o, entry(o, id="old-name"), nobody, nobody) == Decision("index", drop="old-name")


def test_decide_duplicate_content_is_rejected_and_drops_the_earlier_article(folder):
    o = outcome(folder, "a.md")
    d = decide(o, None, {o.article.article.content_hash: "x.md"}.get, never)
    assert (d.action, d.kind, d.drop) == ("reject", "duplicate", None)
    assert d.reason == "duplicate of x.md (same title and text); not indexed twice"
    # The file was indexed (or pending) under its id: that article goes.
    assert decide(o, entry(o, "pending", file_hash=""), {o.article.article.content_hash: "x.md"}.get, never).drop == "a"
    # The holder of the content is the file itself: no duplicate.
    assert decide(o, None, {o.article.article.content_hash: "a.md"}.get, nobody) == Decision("index")


def test_decide_duplicate_id_is_rejected(folder):
    o = outcome(folder, "a.md")
    d = decide(o, None, nobody, {"a": "sub/a.md"}.get)
    assert (d.action, d.kind, d.drop) == ("reject", "duplicate-id", None)
    assert d.reason == "same id 'a' as sub/a.md: rename one of the files"
    assert decide(o, None, nobody, {"a": "a.md"}.get) == Decision("index")


def test_decide_broken_edit_drops_what_was_indexed_and_changes_nothing(folder):
    good = outcome(folder, "a.md")
    broken = FileOutcome("a.md", 10, 1, "f" * 32, None, "yaml", "bad front matter")
    assert decide(broken, entry(good), never, never) == Decision("reject", "yaml", "bad front matter", drop="a")
    assert decide(broken, entry(good, "rejected"), never, never).drop is None
    assert decide(broken, None, never, never).drop is None
    before = (good.article, good.kind, good.reason)
    decide(good, None, {good.article.article.content_hash: "x.md"}.get, never)
    assert (good.article, good.kind, good.reason) == before  # a decision, not an edit


# -- plan --------------------------------------------------------------------------------


def test_plan_against_the_manifest(settings, folder):
    assert run(settings, folder).indexed == 3
    (folder / "b.md").write_text(post("第二篇", "<p>改过的正文，长了一些。</p>"), encoding="utf-8")
    (folder / "c.md").unlink()
    write_posts(folder, d="第四篇")
    with IndexRun(settings, folder) as job:
        assert job.plan() == 2
        assert (job.report.read, job.report.unchanged) == (3, 1)
        assert [rel for _, rel, _, _ in job.manifest.iter_todo()] == ["b.md", "d.md"]
        assert [e.path for e in job.gone] == ["c.md"]
        assert job.pool is None and job.writer is None  # planning starts nothing
    assert run(settings, folder, opts=Options(dry_run=True)).would_delete == ["c.md"]  # nothing was changed


def test_plan_reports_unchanged_rejections_again(settings, folder):
    (folder / "bad.md").write_text("---\ntitle: [unclosed\n---\n<p>x</p>\n", encoding="utf-8")
    first = run(settings, folder)
    assert [r.path for r in first.rejections] == ["bad.md"]
    with IndexRun(settings, folder) as job:
        assert job.plan() == 0
        assert job.report.unchanged == 4
        assert [(r.path, r.kind) for r in job.report.rejections] == [(r.path, r.kind) for r in first.rejections]


# -- admit and write: the write-ahead and the commit policy ----------------------------


def statuses(job: IndexRun, *names: str) -> list[str | None]:
    return [(e.status if (e := job.manifest.get(n)) else None) for n in names]


def test_commit_after_commit_docs_articles(settings, folder):
    with IndexRun(settings, folder, opts=Options(commit_docs=2, commit_seconds=3600)) as job:
        job.start()  # nothing planned: no pool, only the writer
        assert job.pool is None and job.writer is not None
        items = [job.admit(outcome(folder, n)) for n in ("a.md", "b.md", "c.md")]
        job.write(items[:1])
        assert statuses(job, "a.md") == ["pending"]  # in the manifest before the engine has it
        assert job.engine.count() == 0
        job.write(items[1:2])  # two written: commit
        assert statuses(job, "a.md", "b.md") == ["indexed", "indexed"]
        assert job.engine.count() == 2 and not job.uncommitted
        job.write(items[2:])
        assert statuses(job, "c.md") == ["pending"] and job.engine.count() == 2
        job.write([], final=True)  # the last write always commits
        assert statuses(job, "c.md") == ["indexed"] and job.engine.count() == 3


def test_commit_after_commit_seconds(settings, folder):
    with IndexRun(settings, folder, opts=Options(commit_docs=1000, commit_seconds=0.3)) as job:
        job.start()
        items = [job.admit(outcome(folder, n)) for n in ("a.md", "b.md")]
        job.last_commit = time.monotonic()
        job.write(items[:1])
        job.write(items[1:])
        assert statuses(job, "a.md", "b.md") == ["pending", "pending"]
        assert not job.commit_due()
        time.sleep(0.35)
        assert job.commit_due()
        job.write([])
        assert statuses(job, "a.md", "b.md") == ["indexed", "indexed"] and job.engine.count() == 2


def test_admit_rejects_a_duplicate_of_a_file_not_yet_committed(settings, folder):
    (folder / "copy.md").write_bytes((folder / "a.md").read_bytes())
    with IndexRun(settings, folder) as job:
        job.start()
        first, copy = outcome(folder, "a.md"), outcome(folder, "copy.md")
        assert job.admit(first) is first
        rejected = job.admit(copy)
        assert (rejected.article, rejected.kind) == (None, "duplicate")
        assert copy.article is not None  # the worker's outcome is left as it came
        job.write([first, rejected], final=True)
        assert statuses(job, "a.md", "copy.md") == ["indexed", "rejected"]
        assert job.report.indexed == 1 and [r.kind for r in job.report.rejections] == ["duplicate"]
        # Committed, the manifest answers for it: the copy is still a duplicate.
        assert job.admit(outcome(folder, "copy.md")).kind == "duplicate"
        assert job.admit(outcome(folder, "a.md")) is None  # the same file again: unchanged
        assert job.report.unchanged == 1


def test_unfinished_steps_leave_only_what_was_committed(settings, folder):
    with IndexRun(settings, folder, opts=Options(commit_docs=2)) as job:
        job.start()
        job.write([job.admit(outcome(folder, n)) for n in ("a.md", "b.md", "c.md")])
    # Three written at once are committed; the writer is closed, not finished.
    report = run(settings, folder)
    assert (report.unchanged, report.indexed, report.documents) == (3, 0, 3)


# -- process and finish -----------------------------------------------------------------


def test_process_then_finish(settings, folder):
    run(settings, folder)
    (folder / "c.md").unlink()
    write_posts(folder, d="第四篇")
    with IndexRun(settings, folder, opts=Options(workers=1)) as job:
        job.plan()
        job.process()
        assert job.report.indexed == 1 and not job.uncommitted
        report = job.finish()
        assert job.writer is None and job.pool is None
    assert (report.deleted, report.documents, report.index) == (1, 3, job.engine.physical_index())
    saved = json.loads((settings.data_dir / "reports" / "last-run.json").read_text(encoding="utf-8"))
    assert (saved["indexed"], saved["deleted"], saved["unchanged"]) == (1, 1, 2)


def test_rebuild_manifest_replaces_the_live_one_only_when_finished(settings, folder):
    run(settings, folder)
    with IndexRun(settings, folder, rebuild=True) as job:
        job.plan()
        rebuild_manifest = job.mpath
    assert not rebuild_manifest.exists()  # not finished: dropped, the live one kept
    assert run(settings, folder).unchanged == 3
    with IndexRun(settings, folder, rebuild=True) as job:
        job.plan()
        job.process()
        job.finish()
    assert not job.mpath.exists() and job.live_manifest.exists()
    assert run(settings, folder).unchanged == 3
