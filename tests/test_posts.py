"""Parsing Jekyll posts: front matter rules, dates, encodings, boilerplate, and
every kind of bad file rejected with a reason."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from searchcore.files import read_post
from searchcore.posts import Rejected, parse_date, parse_post, split_list


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
    assert a.offset == 480
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
        read_post(str(big), big.name, max_bytes=1024 * 1024)
    assert err.value.kind == "too-large" and "MB" in err.value.reason
    assert read_post(str(big), big.name, max_bytes=2 * 1024 * 1024)[1].title == "t"


def test_the_malformed_real_world_post_shape():
    raw = post('layout: post\ntitle: ""\ndate:  +0800\ncategories: emnews\ntags: 东财滚动新闻', "> 据报道\n\n<a href=''><></a>")
    with pytest.raises(Rejected) as err:
        parse_post(raw, "-202205262391921712.md")
    assert err.value.kind == "no-title"


# --- hostile and unusual input: each case below was found by trying the product ---


def test_crlf_and_cr_line_ends_parse_like_lf():
    lf = post("title: 换行\ndate: 2021-01-01 10:00:00 +0800\ntags: 甲 乙", "<p>正文</p>\n<http://e.cn/a>")
    for ending in (b"\r\n", b"\r"):
        a = parse_post(lf.replace(b"\n", ending), "2021-01-01-crlf.md")
        b = parse_post(lf, "2021-01-01-crlf.md")
        assert (a.title, a.date, a.tags, a.body_text, a.source_url) == (b.title, b.date, b.tags, b.body_text, b.source_url)
        assert "\r" not in a.body_html


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_with_a_bom_is_text_not_binary(codec):
    text = "---\ntitle: 十六位编码\ndate: 2021-01-01 10:00:00 +0800\n---\n<p>正文内容</p>\n"
    raw = text.encode(codec)
    if codec != "utf-16":  # the plain codec writes its own BOM
        raw = ("\ufeff" + text).encode(codec)
    a = parse_post(raw, "2021-01-01-u16.md")
    assert a.title == "十六位编码" and a.body_text == "正文内容"


@pytest.mark.parametrize(
    "name, says",
    [("1899-12-31-old.md", "1899 is outside 1900–2100"), ("2101-01-01-far.md", "2101"), ("0001-01-01-zero.md", "0001")],
)
def test_file_name_dates_are_bounded_like_front_matter_dates(name, says):
    with pytest.raises(Rejected) as err:
        parse_post(post("title: t"), name)
    assert err.value.kind == "no-date" and says in err.value.reason


@pytest.mark.parametrize(
    "value, says",
    [
        ("2021-01-01 10:00:00 +9999", "+9999 is not a UTC offset"),
        ("2021-01-01 10:00:00 +2400", "+2400 is not a UTC offset"),
        ("9999-12-31 23:59:59 -2359", "-2359 is not a UTC offset"),
        ("9999-12-31 23:59:59 +0800", "year 9999 is outside"),
        ("2021-02-30 10:00:00 +0800", "not a calendar date"),
        ("2021-01-01 99:00:00 +0800", "not a calendar date"),
        ("99999999999999999999-01-01", "not a date like"),
    ],
)
def test_unusable_dates_are_explained_in_words(value, says):
    """No raw exception text (OverflowError, 'offset must be a timedelta') reaches
    the operator: without a file-name date the file is rejected with the reason;
    with one, the post is indexed under that date and the report says why."""
    with pytest.raises(Rejected) as err:
        parse_post(post(f"title: t\ndate: {value}"), "undated.md")
    assert err.value.kind == "no-date" and says in err.value.reason
    assert "Error" not in err.value.reason and "timedelta" not in err.value.reason
    a = parse_post(post(f"title: t\ndate: {value}"), "2021-06-01-dated.md")
    assert a.date == datetime(2021, 5, 31, 16, 0, tzinfo=UTC)
    assert len(a.warnings) == 1 and says in a.warnings[0] and "2021-06-01" in a.warnings[0]


def test_no_front_matter_date_falls_back_to_the_file_name_silently():
    assert parse_post(post("title: t"), "2021-06-01-x.md").warnings == ()


def test_control_and_bidi_override_characters_never_reach_titles_or_tags():
    raw = post(
        'title: "账单\\0\\x1b[31m\u202egpj.exe"\ntags: ["台\\0湾", "\u2066新闻\u2069"]\ncategories: "财经\x07"',
        "<p>正文\u202e内容\x08</p>" + "<p>填充</p>" * 2_000 + "<p>后\x00文</p>",  # a NUL past the first 8 kB
    )
    a = parse_post(raw, "2021-01-01-bidi.md")
    assert a.title == "账单[31mgpj.exe"
    assert a.tags == ["台湾", "新闻"] and a.categories == ["财经"]
    assert a.body_text.startswith("正文内容\n") and a.body_text.endswith("\n后文")
    for text in (a.title, *a.tags, *a.categories, a.body_html):
        assert not any(ord(c) < 32 and c not in "\n\t" or 0x202A <= ord(c) <= 0x202E or 0x2066 <= ord(c) <= 0x2069 for c in text)


def test_truncations_are_reported_not_silent():
    tags = " ".join(f"标签{i}" for i in range(10_000))
    raw = post(f"title: {'长' * 100_000}\ndate: 2021-01-01\ntags: {tags}\ncategories: [{'类' * 150}]")
    a = parse_post(raw, "2021-01-01-" + "n" * 250 + ".md")
    assert len(a.title) == 300 and len(a.tags) == 50 and len(a.categories[0]) == 100 and len(a.id) == 200
    said = " | ".join(a.warnings)
    assert "title of 100,000 characters cut to 300" in said
    assert "10,000 tags: kept the first 50" in said
    assert "1 categories longer than 100 characters" in said
    assert "id is its first 200" in said
    assert parse_post(post("title: t\ndate: 2021-01-01\ntags: a b"), "2021-01-01-ok.md").warnings == ()


def test_a_huge_body_is_kept_shown_and_searched_up_to_one_bound():
    """What is shown is what is searched: one bound, cut between elements, reported."""
    from searchcore.posts import MAX_BODY_CHARS

    paragraph = "<p>" + "经济发展" * 250 + "</p>\n"
    body = paragraph * (3 * MAX_BODY_CHARS // len(paragraph)) + "<p>尾声独有词</p>"
    a = parse_post(post("title: 长文\ndate: 2021-01-01", body), "2021-01-01-long.md")
    assert MAX_BODY_CHARS <= len(a.body_html) <= MAX_BODY_CHARS * 5 // 4  # split may finish the element it is in
    assert a.body_html.endswith("</p>") and a.body_html.count("<p>") == a.body_html.count("</p>")
    assert "尾声独有词" not in a.body_text
    (said,) = a.warnings
    assert said.startswith("body of 1,") and f"kept the first {len(a.body_html):,};" in said
    assert parse_post(post("title: 短文\ndate: 2021-01-01", paragraph * 3), "2021-01-01-short.md").warnings == ()


def test_the_default_offset_is_named_once():
    from datetime import timedelta

    from searchcore.clock import DEFAULT_OFFSET_MINUTES, SHANGHAI
    from searchcore.posts import DEFAULT_OFFSET

    assert DEFAULT_OFFSET_MINUTES == 480
    assert SHANGHAI.utcoffset(None) == DEFAULT_OFFSET.utcoffset(None) == timedelta(minutes=DEFAULT_OFFSET_MINUTES)


@pytest.mark.parametrize(
    ("url", "site"),
    [
        ("https://www.rfi.fr/cn/中国/20210714-x", "rfi.fr"),
        ("http://RFI.fr:8080/x", "rfi.fr"),
        ("https://cn.reuters.com/article/x", "cn.reuters.com"),
        ("https://www.bbc.co.uk./zhongwen", "bbc.co.uk"),
        ("https://中文.example/x", "中文.example"),
        ("javascript:alert(1)", ""),  # not a link to a site
        ("//news.example/x", ""),  # no scheme: not a source link
        ("http://a<b>.example/", ""),  # a hostile "host" is not shown as one
        ("http://[bad", ""),
        ("", ""),
        (None, ""),
    ],
)
def test_site_is_the_source_links_host_without_www(url, site):
    from searchcore.model import site_of

    assert site_of(url) == site
