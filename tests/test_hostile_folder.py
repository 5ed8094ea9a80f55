"""A posts folder written by an attacker, beside good posts: every good post is
indexed, every hostile file is rejected by itself with a reason in words, and the
run ends in bounded time whatever the folder holds.

Real files only, nothing monkeypatched: a named pipe, links to /dev/zero and to a
file outside the folder, wide flat HTML, a 9 MB post, CRLF and UTF-16 posts, a date
before 1900, names with a newline, terminal escapes, bidi overrides and bytes that
are not UTF-8, a post with 10,000 tags and a 100 kB title, a file slower than its
time budget, a worker killed in the middle of a file, an indexer killed mid-run.
The first tests are the attacker's findings, reproduced one by one.
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

from indexer.cli import main
from indexer.pipeline import Options, run
from searchcore.engines import open_engine
from searchcore.search import Searcher, SearchRequest
from synthetic import make_posts, write_corpus

from .conftest import cli_env, make_settings

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024


def post(title: str, body: str, date: str | None = None, extra: str = "") -> str:
    date_line = f"date: {date}\n" if date else ""
    return f"---\ntitle: {title}\n{date_line}{extra}---\n{body}\n"


def legal_big_post(path: Path, size: int) -> Path:
    """A post of ``size`` bytes that is legal (long paragraphs of news text, a few
    hundred elements) and slow: seconds of real work, no trick."""
    paragraphs = [re.sub(r"<[^>]+>|\n", "", p.body_html) for p in make_posts(300, seed=9)]
    unit = "".join(f"<p>{t}</p>\n" for t in paragraphs).encode()
    head = post("超长但合法的文章", "", "2021-06-01 08:00:00 +0800").encode()
    body = unit * (size // len(unit) + 1)
    body = body[: size - len(head)].rsplit(b"</p>", 1)[0] + b"</p>\n"
    path.write_bytes(head + body)
    return path


def link_outside(folder: Path, elsewhere: Path) -> Path:
    """A post outside the posts folder (in ``elsewhere``) and a link to it inside,
    named 2021-03-16-outside.md; returns the outside file."""
    elsewhere.mkdir()
    secret = elsewhere / "2021-01-01-secret.md"
    secret.write_text(post("机密文件", "<p>绝密内容在此</p>", "2021-01-01"), encoding="utf-8")
    (folder / "2021-03-16-outside.md").symlink_to(secret)
    return secret


def small_corpus(folder: Path, n: int = 5, seed: int = 1) -> int:
    return write_corpus(folder, n, seed=seed)["expected_ok"]


def cli(settings, *args: str):
    env = {"ELASTICSEARCH_URL": settings.elasticsearch_url}
    base = ["--engine", settings.engine, "--data-dir", str(settings.data_dir), "--index", settings.index]
    return CliRunner().invoke(main, [*base, *args], env=env, catch_exceptions=False)


def ledger(settings) -> dict[str, dict]:
    lines = (settings.data_dir / "rejected.jsonl").read_text(encoding="utf-8").splitlines()
    return {r["path"]: r for r in map(json.loads, lines)}


def count(settings) -> int:
    engine = open_engine(settings)
    try:
        return engine.count()
    finally:
        engine.close()


@pytest.fixture
def tantivy(tmp_path):
    return make_settings("tantivy", tmp_path / "data")


# -- the findings, reproduced -----------------------------------------------------------


@pytest.mark.timeout(60)
def test_repro_a_named_pipe_named_like_a_post_does_not_block_the_run(tantivy, tmp_path):
    folder = tmp_path / "posts"
    good = small_corpus(folder)
    os.mkfifo(folder / "2021-03-13-fifo.md")
    t0 = time.monotonic()
    report = run(tantivy, folder)
    assert time.monotonic() - t0 < 10  # rejected by kind, not by the time budget
    assert [(r.path, r.kind) for r in report.rejections] == [("2021-03-13-fifo.md", "not-a-file")]
    assert "named pipe" in report.rejections[0].reason
    assert report.indexed == good == count(tantivy)


@pytest.mark.timeout(60)
def test_repro_a_link_to_dev_zero_is_not_read_even_under_a_memory_cap(tantivy, tmp_path):
    """Before the fix the link (size 0) passed the size check and was read until
    memory ran out; the cap keeps a regression from taking the machine with it."""
    folder = tmp_path / "posts"
    good = small_corpus(folder)
    (folder / "2021-03-14-zero.md").symlink_to("/dev/zero")

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 * 1024 * MB, 3 * 1024 * MB))

    cmd = [sys.executable, "-m", "indexer.cli", "index", str(folder), "--no-progress"]
    res = subprocess.run(cmd, env=cli_env(tantivy), capture_output=True, text=True, timeout=50, preexec_fn=cap)
    assert res.returncode == 1, res.stderr
    rejected = ledger(tantivy)["2021-03-14-zero.md"]
    assert rejected["kind"] == "not-a-file" and "character device" in rejected["reason"]
    assert count(tantivy) == good


@pytest.mark.timeout(60)
def test_repro_a_link_to_a_file_outside_the_folder_is_not_indexed(tantivy, tmp_path):
    folder = tmp_path / "posts"
    good = small_corpus(folder)
    secret = link_outside(folder, tmp_path / "elsewhere")
    report = run(tantivy, folder)
    [r] = report.rejections
    assert (r.path, r.kind) == ("2021-03-16-outside.md", "symlink-outside")
    assert "outside the posts folder" in r.reason and str(secret.parent) not in r.reason
    assert count(tantivy) == good
    engine = open_engine(tantivy)
    assert Searcher(engine, tantivy).search(SearchRequest(q="绝密内容")).total == 0
    engine.close()


@pytest.mark.timeout(60)
def test_repro_a_newline_in_a_file_name_cannot_forge_a_line(tantivy, tmp_path):
    folder = tmp_path / "posts"
    small_corpus(folder)
    name = "2021-01-01-a\nREJECTED forged.md: all fine.md"
    (folder / name).write_text("no front matter here\n", encoding="utf-8")
    res = cli(tantivy, "index", str(folder), "--no-progress")
    assert res.exit_code == 1
    lines = res.output.splitlines()
    assert [ln for ln in lines if ln.startswith("REJECTED")] == [
        "REJECTED 2021-01-01-a\\nREJECTED forged.md: all fine.md: no YAML front matter: the file must start with a "
        "'---' line and close it with another"
    ]
    assert list(ledger(tantivy)) == [name]  # the ledger keeps the exact name


@pytest.mark.timeout(60)
def test_repro_a_name_that_is_not_utf8_is_rejected_instead_of_stopping_the_run(tantivy, tmp_path):
    """Found while fixing the others: such a name crashed the run in the manifest."""
    folder = tmp_path / "posts"
    good = small_corpus(folder)
    with open(os.fsencode(folder) + b"/2021-05-04-bad\xff.md", "wb") as fh:
        fh.write(post("名字不是UTF-8", "<p>正文</p>", "2021-05-04").encode())
    res = cli(tantivy, "index", str(folder), "--no-progress")
    assert res.exit_code == 1, res.output
    assert "REJECTED 2021-05-04-bad\\xff.md: the file name is not valid UTF-8" in res.output
    assert ledger(tantivy)["2021-05-04-bad\\xff.md"]["kind"] == "bad-name"
    assert count(tantivy) == good


# -- the whole hostile folder, on every engine ------------------------------------------------

GOOD_POSTS = 40
ESCAPE_NAME = "2021-05-02-\x1b[31mred\u202etxt.md"
NEWLINE_NAME = "2021-05-01-evil\nREJECTED forged.md: fine.md"
# path -> kind; every one is rejected on its own, with a reason in words
HOSTILE_REJECTED = {
    "2021-03-13-fifo.md": "not-a-file",
    "2021-03-14-zero.md": "not-a-file",
    "2021-03-16-outside.md": "symlink-outside",
    "2021-03-15-wide.html": "html-bomb",
    "1899-12-31-old.md": "no-date",
    NEWLINE_NAME: "front-matter",
    ESCAPE_NAME: "no-title",
    "2021-05-04-bad\\xff.md": "bad-name",
}
HOSTILE_INDEXED = {  # path -> article id
    "2021-06-01-big.md": "2021-06-01-big",
    "2021-04-01-crlf.md": "2021-04-01-crlf",
    "2021-04-02-utf16.md": "2021-04-02-utf16",
    "2021-05-03-many-tags.md": "2021-05-03-many-tags",
    "2021-05-05-inside-link.md": "2021-05-05-inside-link",
}


def hostile_folder(base: Path, big: int = 9 * MB) -> Path:
    folder = base / "posts"
    assert write_corpus(folder, GOOD_POSTS, seed=41)["expected_ok"] == GOOD_POSTS
    elsewhere = base / "elsewhere"
    link_outside(folder, elsewhere)
    os.mkfifo(folder / "2021-03-13-fifo.md")
    (folder / "2021-03-14-zero.md").symlink_to("/dev/zero")
    (folder / "linked-folder").symlink_to(elsewhere, target_is_directory=True)  # never followed
    (folder / "2021-03-15-wide.html").write_text(post("宽", "<p><b>x</b></p>" * 300_000), encoding="utf-8")
    legal_big_post(folder / "2021-06-01-big.md", big)
    crlf = post("回车换行的文章", "<p>用回车换行写成的正文。</p>", "2021-04-01 09:00:00 +0800")
    (folder / "2021-04-01-crlf.md").write_bytes(crlf.replace("\n", "\r\n").encode())
    utf16 = post("UTF-16编码的文章", "<p>用UTF-16写成的正文。</p>", "2021-04-02 09:00:00 +0800")
    (folder / "2021-04-02-utf16.md").write_bytes(utf16.encode("utf-16"))  # with its BOM
    (folder / "1899-12-31-old.md").write_text(post("太古老的文章", "<p>一八九九年的正文。</p>"), encoding="utf-8")
    (folder / NEWLINE_NAME).write_text("no front matter here\n", encoding="utf-8")
    (folder / ESCAPE_NAME).write_text(post("", "<p>正文</p>", "2021-05-02"), encoding="utf-8")
    with open(os.fsencode(folder) + b"/2021-05-04-bad\xff.md", "wb") as fh:
        fh.write(post("名字不是UTF-8", "<p>正文</p>", "2021-05-04").encode())
    tags = "tags: [" + ", ".join(f"标签{i}" for i in range(10_000)) + "]\n"
    long_title = "很长的标题" * 20_000  # 100,000 characters
    many = post(long_title, "<p>标签很多、标题很长的文章。</p>", "2021-05-03 09:00:00 +0800", tags)
    (folder / "2021-05-03-many-tags.md").write_text(many, encoding="utf-8")
    drafts = folder / ".drafts"  # hidden: not scanned itself, reachable through a link inside
    drafts.mkdir()
    (drafts / "draft.md").write_text(post("链接到文件夹内的文章", "<p>文件夹内链接的正文。</p>", "2021-05-05"), encoding="utf-8")
    (folder / "2021-05-05-inside-link.md").symlink_to(drafts / "draft.md")
    return folder


@pytest.mark.timeout(120)
def test_hostile_folder_beside_good_posts(settings, tmp_path):
    # 9 MB: under the 10 MB limit, so it must be read and indexed, on both engines. Its
    # token streams once weighed ~23× its size, which Elasticsearch refused (429); a body
    # is kept up to posts.MAX_BODY_CHARS now, and the report says so.
    folder = hostile_folder(tmp_path)
    t0 = time.monotonic()
    res = cli(settings, "index", str(folder), "--no-progress")
    seconds = time.monotonic() - t0
    assert res.exit_code == 1, res.output
    assert seconds < 60, seconds

    # Every good post is in the engine, and each legal odd one.
    assert count(settings) == GOOD_POSTS + len(HOSTILE_INDEXED)
    engine = open_engine(settings)
    searcher = Searcher(engine, settings)
    for doc_id in HOSTILE_INDEXED.values():
        assert searcher.article(doc_id) is not None, doc_id
    assert searcher.article("2021-04-01-crlf").title == "回车换行的文章"
    assert searcher.article("2021-04-02-utf16").title == "UTF-16编码的文章"
    assert searcher.search(SearchRequest(q="绝密内容")).total == 0
    engine.close()

    # Each hostile file is rejected with its kind, in the ledger and the report alike.
    got = ledger(settings)
    assert {p: r["kind"] for p, r in got.items()} == HOSTILE_REJECTED
    report = json.loads((settings.data_dir / "reports" / "last-run.json").read_text(encoding="utf-8"))
    assert {r["path"]: r["kind"] for r in report["rejections"]} == HOSTILE_REJECTED
    assert report["rejected"] == len(HOSTILE_REJECTED) and report["indexed"] == GOOD_POSTS + len(HOSTILE_INDEXED)
    for r in got.values():
        assert r["reason"] and " " in r["reason"] and not r["reason"].startswith("unexpected"), r
    assert "named pipe" in got["2021-03-13-fifo.md"]["reason"]
    assert "character device" in got["2021-03-14-zero.md"]["reason"]
    assert "outside the posts folder" in got["2021-03-16-outside.md"]["reason"]
    assert "elsewhere" not in got["2021-03-16-outside.md"]["reason"]
    assert "1899" in got["1899-12-31-old.md"]["reason"]
    assert not any(p.startswith("linked-folder") for p in got)

    # The truncations are reported, not silent.
    warned = {(w["path"], w["message"]) for w in report["warnings"]}
    many = [m for p, m in warned if p == "2021-05-03-many-tags.md"]
    assert any("title" in m for m in many) and any("tags" in m for m in many), warned
    big = [m for p, m in warned if p == "2021-06-01-big.md"]
    assert big and "the rest is neither shown nor searchable" in big[0], warned

    # The screen: one line per rejection and per warning, names escaped.
    lines = res.output.splitlines()
    assert len([ln for ln in lines if ln.startswith("REJECTED ")]) == len(HOSTILE_REJECTED)
    assert len([ln for ln in lines if ln.startswith("WARNING ")]) == len(report["warnings"])
    assert not any(ln.startswith("REJECTED forged.md") for ln in lines)
    assert "REJECTED 2021-05-01-evil\\nREJECTED forged.md: fine.md: no YAML front matter" in res.output
    assert "REJECTED 2021-05-02-\\x1b[31mred\\u202etxt.md: no title" in res.output
    assert "\x1b" not in res.output and "\u202e" not in res.output
    assert f"rejected {len(HOSTILE_REJECTED)}, warnings {len(report['warnings'])} in" in res.output

    # Run again: nothing to do, and the JSON says the same rejections and warnings.
    again = cli(settings, "--json", "index", str(folder))
    data = json.loads(again.output)
    assert data["indexed"] == 0 and data["unchanged"] >= GOOD_POSTS + len(HOSTILE_INDEXED)
    assert {r["path"]: r["kind"] for r in data["rejections"]} == HOSTILE_REJECTED
    assert {(w["path"], w["message"]) for w in data["warnings"]} == warned
    assert count(settings) == GOOD_POSTS + len(HOSTILE_INDEXED)


@pytest.mark.timeout(60)
def test_follow_symlinks_reads_the_outside_file_and_a_run_without_it_drops_it(tantivy, tmp_path):
    folder = tmp_path / "posts"
    good = small_corpus(folder)
    link_outside(folder, tmp_path / "elsewhere")
    (folder / "2021-03-14-zero.md").symlink_to("/dev/zero")
    report = run(tantivy, folder, opts=Options(follow_symlinks=True))
    assert [(r.path, r.kind) for r in report.rejections] == [("2021-03-14-zero.md", "not-a-file")]  # devices never
    assert count(tantivy) == good + 1
    engine = open_engine(tantivy)
    searcher = Searcher(engine, tantivy)
    assert [h.id for h in searcher.search(SearchRequest(q="绝密内容")).hits] == ["2021-03-16-outside"]

    report = run(tantivy, folder)  # the operator no longer allows it: it goes
    assert {r.path: r.kind for r in report.rejections}["2021-03-16-outside.md"] == "symlink-outside"
    assert count(tantivy) == good
    assert searcher.search(SearchRequest(q="绝密内容")).total == 0
    engine.close()


# -- the time budget and dying workers -------------------------------------------------------------


@pytest.mark.timeout(60)
def test_a_slow_file_in_a_small_run_is_rejected_and_the_run_goes_on(tantivy, tmp_path):
    """A handful of files with one worker: once processed in the indexer itself,
    where nothing could interrupt them; now the slow one costs only itself."""
    folder = tmp_path / "posts"
    good = small_corpus(folder, 6, seed=2)
    legal_big_post(folder / "2021-06-01-big.md", 9 * MB)  # ~2 s of real work
    t0 = time.monotonic()
    report = run(tantivy, folder, opts=Options(workers=1, file_timeout=0.5))
    assert time.monotonic() - t0 < 15
    assert [(r.path, r.kind, r.reason) for r in report.rejections] == [
        ("2021-06-01-big.md", "timeout", "took longer than 0.5 s to process (--file-timeout); its worker was stopped")
    ]
    assert report.indexed == good == count(tantivy)
    # A timeout depends on the machine and the option: the next run looks again.
    again = run(tantivy, folder, opts=Options(workers=1, file_timeout=60))
    assert again.indexed == 1 and again.rejected == 0 and count(tantivy) == good + 1


@pytest.mark.timeout(90)
def test_timeouts_in_chunks_blame_the_file_in_progress_and_resubmit_the_rest(tantivy, tmp_path):
    folder = tmp_path / "posts"
    good = small_corpus(folder, 150, seed=3)
    for name in ("2021-07-01-slow-a.md", "2022-07-01-slow-b.md"):  # mid-order, inside chunks
        legal_big_post(folder / name, 9 * MB)
    res = cli(tantivy, "index", str(folder), "--workers", "2", "--file-timeout", "0.5", "--no-progress")
    assert res.exit_code == 1, res.output
    assert {p: r["kind"] for p, r in ledger(tantivy).items()} == {
        "2021-07-01-slow-a.md": "timeout",
        "2022-07-01-slow-b.md": "timeout",
    }
    assert "REJECTED 2021-07-01-slow-a.md: took longer than 0.5 s to process (--file-timeout)" in res.output
    assert count(tantivy) == good


def _workers_of(indexer: psutil.Process, timeout: float = 30) -> tuple[psutil.Process, list[psutil.Process]]:
    """The indexer's spawner and its workers, once they exist."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for child in indexer.children():
            workers = child.children()
            if workers:
                return child, workers
        time.sleep(0.05)
    raise AssertionError("no worker processes appeared")


def _busy(worker: psutil.Process, cpu: float = 0.3, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if sum(worker.cpu_times()[:2]) >= cpu:
            return
        time.sleep(0.02)
    raise AssertionError("the worker never got busy")


@pytest.mark.timeout(90)
def test_a_worker_that_dies_costs_only_the_file_it_was_on(tantivy, tmp_path):
    folder = tmp_path / "posts"
    good = small_corpus(folder, 8, seed=4)
    legal_big_post(folder / "2000-01-01-big.md", 9 * MB)  # first in order: the worker starts on it
    cmd = [sys.executable, "-m", "indexer.cli", "index", str(folder), "--workers", "1", "--file-timeout", "60"]
    proc = subprocess.Popen(cmd, env=cli_env(tantivy), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _spawner, [worker] = _workers_of(psutil.Process(proc.pid))
        _busy(worker)  # well into the big file (the small ones take milliseconds)
        worker.send_signal(signal.SIGSEGV)  # as a crash in a C extension would
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 1, err
    [(path, rejected)] = ledger(tantivy).items()
    assert path == "2000-01-01-big.md" and rejected["kind"] == "crashed"
    assert rejected["reason"] == "the worker processing it died (killed by signal 11, SIGSEGV); not indexed"
    assert count(tantivy) == good
    assert "REJECTED 2000-01-01-big.md: the worker processing it died" in err


@pytest.mark.timeout(90)
def test_sigkill_of_the_indexer_leaves_no_worker_behind(tantivy, tmp_path):
    folder = tmp_path / "posts"
    small_corpus(folder, 8, seed=5)
    legal_big_post(folder / "2000-01-01-big.md", 9 * MB)
    cmd = [sys.executable, "-m", "indexer.cli", "index", str(folder), "--workers", "2", "--file-timeout", "60"]
    proc = subprocess.Popen(cmd, env=cli_env(tantivy), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    spawner, workers = _workers_of(psutil.Process(proc.pid))
    _busy(workers[0], 0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    end = time.monotonic() + 10
    alive = [spawner, *workers]
    while alive and time.monotonic() < end:
        alive = [p for p in alive if _alive(p)]
        time.sleep(0.05)
    assert not alive, alive


def _alive(p: psutil.Process) -> bool:
    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
