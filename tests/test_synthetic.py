"""Tests for the synthetic package (fast: well under 5 s)."""

from __future__ import annotations

import inspect
import json
import re
import tracemalloc
from datetime import UTC, date, datetime
from pathlib import Path

import opencc
import pytest
import yaml

from synthetic import (
    ACCEPTED_KINDS,
    CATEGORIES,
    REJECTED_KINDS,
    SyntheticPost,
    main,
    make_posts,
    write_corpus,
)

FILENAME_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})-[^/\\]+\.md$")
DATE_IN_NAME_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
TAG_RE = re.compile(r"<[^>]+>")
SCRIPT_STYLE_RE = re.compile(r"<(script|style)\b[^>]*>.*?</\1>", re.DOTALL)


def split_front_matter(text: str) -> tuple[str, str]:
    assert text.startswith("---\n")
    end = text.index("\n---\n", 3)
    return text[4:end], text[end + 5 :]


def visible(html: str) -> str:
    html = SCRIPT_STYLE_RE.sub("", html)
    return TAG_RE.sub("", html).replace("&nbsp;", " ")


# ---------------------------------------------------------------------------
# make_posts
# ---------------------------------------------------------------------------


def test_make_posts_is_a_lazy_generator():
    gen = make_posts(10**9, seed=1)  # would never fit in memory if it built a list
    assert inspect.isgenerator(gen)
    first = next(gen)
    assert isinstance(first, SyntheticPost)
    gen.close()


def test_make_posts_memory_is_flat():
    tracemalloc.start()
    try:
        for _ in make_posts(1500, seed=2):
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3_000_000, peak


def test_deterministic_for_a_seed():
    a = list(make_posts(60, seed=7))
    b = list(make_posts(60, seed=7))
    c = list(make_posts(60, seed=8))
    assert a == b
    assert [p.text for p in a] != [p.text for p in c]


def test_front_matter_parses_and_matches_fields():
    for post in make_posts(300, seed=3):
        fm_text, rest = split_front_matter(post.text)
        fm = yaml.safe_load(fm_text)
        assert fm["layout"] == "post"
        assert fm["title"] == post.title
        assert 8 <= len(post.title) <= 30
        assert datetime.strptime(fm["date"], "%Y-%m-%d %H:%M:%S %z") == post.date
        assert fm["categories"].split() == post.categories
        assert fm["tags"].split() == post.tags
        assert 1 <= len(post.tags) <= 4
        assert len(set(post.tags)) == len(post.tags)
        assert post.categories[0] in CATEGORIES
        assert rest.startswith(post.body_html)
        assert f"\n\n<{post.source_url}>\n\n" in rest
        assert rest.rstrip().endswith("｜[返回首页](//news.example/)")
        assert "（文章来源：" in post.body_html or "（文章來源：" in post.body_html
        assert post.date.utcoffset().total_seconds() == 8 * 3600
        n_par = post.body_html.count("<p")
        assert n_par >= 3
        assert 200 <= len(visible(post.body_html)) <= 2050


def test_dates_in_range_and_unique_filenames():
    start, end = date(2020, 3, 1), date(2021, 2, 28)
    posts = list(make_posts(1000, seed=4, start=start, end=end))
    names = [p.filename for p in posts]
    assert len(set(names)) == len(names)
    years = set()
    for p in posts:
        m = FILENAME_RE.match(p.filename)
        assert m, p.filename
        assert start <= p.date.date() <= end
        assert p.filename.startswith(p.date.strftime("%Y-%m-%d"))
        years.add(p.date.year)
    assert years == {2020, 2021}


def test_content_has_nasty_html_and_mixed_tokens():
    posts = list(make_posts(400, seed=5))
    bodies = "".join(p.body_html for p in posts)
    for needle in ("<script", "onerror=alert(1)", "javascript:alert(1)", "<iframe", "<style", 'style="', 'class="', "<span"):
        assert needle in bodies, needle
    titles = "".join(p.title for p in posts)
    assert re.search(r"[A-Za-z0-9]", titles)
    assert len({p.categories[0] for p in posts}) == len(CATEGORIES)


def test_traditional_share_about_one_quarter():
    t2s = opencc.OpenCC("t2s")
    posts = list(make_posts(400, seed=6))
    trad = sum(1 for p in posts if t2s.convert(p.body_html) != p.body_html)
    assert 0.17 <= trad / len(posts) <= 0.33, trad


def test_tags_are_zipf_like():
    counts: dict[str, int] = {}
    for p in make_posts(1000, seed=9):
        for t in p.tags:
            counts[t] = counts.get(t, 0) + 1
    freq = sorted(counts.values(), reverse=True)
    assert len(freq) >= 25
    assert freq[0] >= 8 * freq[len(freq) // 2]


# ---------------------------------------------------------------------------
# write_corpus
# ---------------------------------------------------------------------------


def reference_load(path: Path) -> bool:
    """A minimal lenient loader: True if the file is an acceptable post."""
    data = path.read_bytes()
    if b"\x00" in data or len(data) > 1_900_000:
        return False
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError:
            return False
    try:
        fm_text, body = split_front_matter(text)
        fm = yaml.safe_load(fm_text)
    except (AssertionError, ValueError, yaml.YAMLError):
        return False
    if not isinstance(fm, dict) or not fm.get("title"):
        return False
    if not fm.get("date") and not DATE_IN_NAME_RE.match(path.name):
        return False
    return bool(visible(body).strip())


def on_disk(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_write_corpus_broken_kinds_match_disk(tmp_path):
    out = tmp_path / "corpus"
    s = write_corpus(out, 200, seed=3, broken=0.1)
    files = on_disk(out)
    assert s["files"] == s["written"] == len(files)
    assert set(s["broken"]) == set(REJECTED_KINDS) | set(ACCEPTED_KINDS)
    assert sum(s["broken"].values()) == 20
    assert set(s["expected_rejected"].values()) == set(REJECTED_KINDS)
    assert set(s["awkward"].values()) == set(ACCEPTED_KINDS)
    assert s["written"] == 200 + s["broken"]["duplicate"]
    assert s["expected_ok"] == s["written"] - len(s["expected_rejected"])
    assert not any(f.endswith(".json") for f in files)

    ok = {f for f in files if reference_load(out / f)}
    assert ok == files - set(s["expected_rejected"])
    assert len(ok) == s["expected_ok"]

    for rel, kind in s["expected_rejected"].items():
        path = out / rel
        data = path.read_bytes()
        assert path.suffix == ".md"
        if kind == "undecodable":
            with pytest.raises(UnicodeDecodeError):
                data.decode("utf-8")
            with pytest.raises(UnicodeDecodeError):
                data.decode("gb18030")
        elif kind == "binary":
            assert b"\x00" in data
        elif kind == "html_bomb":
            assert data.count(b"<div>") >= 100_000
        elif kind == "oversized":
            assert len(data) >= s["oversized_bytes"] == 2 * 1024 * 1024
        elif kind == "bad_yaml":
            with pytest.raises(yaml.YAMLError):
                yaml.safe_load(split_front_matter(data.decode())[0])
        elif kind == "missing_title":
            assert "title" not in yaml.safe_load(split_front_matter(data.decode())[0])
        elif kind == "no_date":
            fm = yaml.safe_load(split_front_matter(data.decode())[0])
            assert "date" not in fm and fm["title"]
            assert not DATE_IN_NAME_RE.search(rel)
        elif kind == "empty_body":
            assert split_front_matter(data.decode())[1].strip() == ""

    for rel, kind in s["awkward"].items():
        data = (out / rel).read_bytes()
        if kind == "gb18030":
            with pytest.raises(UnicodeDecodeError):
                data.decode("utf-8")
            data.decode("gb18030")
        elif kind == "bom":
            assert data.startswith(b"\xef\xbb\xbf")
        elif kind == "duplicate":
            assert data == (out / s["duplicates"][rel]).read_bytes()
            assert rel != s["duplicates"][rel]
        elif kind == "yaml_lists":
            fm = yaml.safe_load(split_front_matter(data.decode())[0])
            assert isinstance(fm["categories"], list) and isinstance(fm["tags"], list)
        elif kind == "utc_date":
            assert re.search(rb"\ndate: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z\n", data)
            fm = yaml.safe_load(split_front_matter(data.decode())[0])
            assert fm["date"].tzinfo is not None
            assert fm["date"].utcoffset() == UTC.utcoffset(None)
        elif kind == "spaces_in_name":
            assert " " in rel


def test_write_corpus_clean_is_deterministic_and_flat(tmp_path):
    a = write_corpus(tmp_path / "a", 40, seed=11)
    b = write_corpus(tmp_path / "b", 40, seed=11)
    assert {k: v for k, v in a.items() if k != "seconds"} == {k: v for k, v in b.items() if k != "seconds"}
    assert a["broken"] == {} and a["expected_rejected"] == {}
    assert a["expected_ok"] == a["written"] == a["files"] == 40
    names = on_disk(tmp_path / "a")
    assert names == on_disk(tmp_path / "b")
    assert all("/" not in n for n in names)
    for n in names:
        assert (tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes()
    expected = {p.filename: p.text for p in make_posts(40, seed=11)}
    assert {n: (tmp_path / "a" / n).read_text("utf-8") for n in names} == expected


def test_write_corpus_sharded_and_refuses_non_empty(tmp_path):
    s = write_corpus(tmp_path / "c", 60, seed=1, broken=0.3, shard=True)
    assert s["sharded"]
    files = on_disk(tmp_path / "c")
    assert len(files) == s["files"]
    assert all(re.match(r"^(\d{4}|misc)/", f) for f in files)
    with pytest.raises(FileExistsError):
        write_corpus(tmp_path / "c", 5)


def test_cli(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "--broken" in capsys.readouterr().out
    assert main([str(tmp_path / "d"), "-n", "30", "--seed", "1", "--broken", "0.5"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["written"] == summary["files"] == len(on_disk(tmp_path / "d"))
    assert set(summary["expected_rejected"].values()) == set(REJECTED_KINDS)
