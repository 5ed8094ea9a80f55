"""Parsing Jekyll posts: front matter rules, dates, encodings, boilerplate, and
every kind of bad file rejected with a reason."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from searchcore.posts import Rejected, parse_date, parse_post, read_post, split_list


def post(front: str, body: str = "<p>正文内容。</p>") -> bytes:
    return f"---\n{front}\n---\n{body}\n".encode()


def test_target_format_parses():
    raw = post(
        'layout: post\ntitle: "天津产教融合"\ndate: 2022-01-03 09:45:21 +0800\ncategories: xinwenlianbo\ntags: 新闻联播 央视快评',
        "<p>内容</p><p class='em_media'>（文章来源：央视网）</p>\n\n<http://e.cn/a.html>\n\n"
        "[返回新闻联播新闻](//e.cn/x.html)｜[返回首页](//e.cn/)",
    )
    a = parse_post(raw, "2022-01-03-slug.md")
    assert a.id == "2022-01-03-slug"
    assert a.title == "天津产教融合"
    assert a.date == datetime(2022, 1, 3, 1, 45, 21, tzinfo=UTC)
    assert a.utc_offset_minutes == 480
    assert a.categories == ["xinwenlianbo"]
    assert a.tags == ["新闻联播", "央视快评"]
    assert a.source_url == "http://e.cn/a.html"
    assert a.body_text == "内容"
    assert "返回" not in a.body_html and "文章来源" not in a.body_html and "e.cn" not in a.body_html


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2022-01-03 09:45:21 +0800", datetime(2022, 1, 3, 1, 45, 21, tzinfo=UTC)),
        ("2020-07-30T17:09:49.000Z", datetime(2020, 7, 30, 17, 9, 49, tzinfo=UTC)),
        ("2022-01-03 09:45:21 +08:00", datetime(2022, 1, 3, 1, 45, 21, tzinfo=UTC)),
        ("2022-01-03", datetime(2022, 1, 2, 16, 0, tzinfo=UTC)),
        ("2022-01-03 09:45 -0500", datetime(2022, 1, 3, 14, 45, tzinfo=UTC)),
    ],
)
def test_dates_with_offsets(value, expected):
    assert parse_date(value)[0] == expected


@pytest.mark.parametrize("value", [" +0800", "2022-13-01", "yesterday", "2022-02-30 10:00:00 +0800", "1800-01-01"])
def test_bad_dates(value):
    assert parse_date(value) is None


def test_list_and_space_separated_values():
    assert split_list("新闻联播 央视快评") == ["新闻联播", "央视快评"]
    assert split_list(["RTI 中央廣播電臺", "BBC"]) == ["RTI 中央廣播電臺", "BBC"]
    assert split_list(None) == []
    assert split_list(["a", "a", ""]) == ["a"]


def test_yaml_list_syntax_and_filename_date_fallback():
    a = parse_post(post("title: 标题\ntags: [ BBC ]\ncategories: [ 德国之声, 国际 ]\ndate:  +0800"), "2021-03-04-x.md")
    assert a.tags == ["BBC"] and a.categories == ["德国之声", "国际"]
    assert a.date.astimezone().date().isoformat() in ("2021-03-03", "2021-03-04")
    assert a.date == datetime(2021, 3, 3, 16, 0, tzinfo=UTC)


def test_source_url_from_front_matter_when_no_trailing_line():
    a = parse_post(post("title: t\ndate: 2020-01-01\nfrom: https://example.org/a"), "x.md")
    assert a.source_url == "https://example.org/a"


def test_markdown_links_render_for_md_not_html():
    body = "[链接](https://example.org/a)\n\n<p>段落</p>"
    md = parse_post(post("title: t\ndate: 2020-01-01", body), "x.md")
    assert '<a rel="noopener nofollow" href="https://example.org/a">链接</a>' in md.body_html
    html = parse_post(post("title: t\ndate: 2020-01-01", body), "x.html")
    assert "[链接]" in html.body_text


def test_encodings_bom_and_gb18030():
    raw = post("title: 编码测试\ndate: 2020-01-01", "<p>中文内容</p>")
    assert parse_post(b"\xef\xbb\xbf" + raw, "a.md").title == "编码测试"
    gb = raw.decode().encode("gb18030")
    assert parse_post(gb, "b.md").body_text == "中文内容"


@pytest.mark.parametrize(
    "raw, kind",
    [
        (b"---\ntitle: x\ndate: 2020-01-01\n---\n\xff\xfe\xfa\xff body", "encoding"),
        (b"\x00\x01\x02binary" * 10, "binary"),
        (post("title: [unclosed\ndate: 2020-01-01"), "yaml"),
        (post('title: ""\ndate: 2020-01-01'), "no-title"),
        (post("date: 2020-01-01"), "no-title"),
        (post("title: t"), "no-date"),
        (post("title: t\ndate: 2020-01-01", "<script>only()</script>\n<div> </div>"), "empty-body"),
        (post("title: t\ndate: 2020-01-01", "<div>" * 5000 + "x" + "</div>" * 5000), "html-bomb"),
        (b"<p>no front matter</p>", "front-matter"),
        (post("- a\n- b"), "yaml"),
    ],
)
def test_bad_files_are_rejected_with_a_reason(raw, kind):
    with pytest.raises(Rejected) as err:
        parse_post(raw, "nodate-name.md")
    assert err.value.kind == kind
    assert len(err.value.reason) > 10


def test_size_limit_checked_before_reading(tmp_path):
    big = tmp_path / "2020-01-01-big.md"
    big.write_bytes(post("title: t\ndate: 2020-01-01", "<p>" + "字" * 400_000 + "</p>"))
    with pytest.raises(Rejected) as err:
        read_post(big, big.name, max_bytes=1024 * 1024)
    assert err.value.kind == "too-large" and "MB" in err.value.reason
    assert read_post(big, big.name, max_bytes=2 * 1024 * 1024)[1].title == "t"


def test_the_malformed_real_world_post_shape():
    raw = post('layout: post\ntitle: ""\ndate:  +0800\ncategories: emnews\ntags: 东财滚动新闻', "> 据报道\n\n<a href=''><></a>")
    with pytest.raises(Rejected) as err:
        parse_post(raw, "-202205262391921712.md")
    assert err.value.kind == "no-title"
