"""The sanitizer keeps reading content and removes everything executable."""

from __future__ import annotations

import pytest

from searchcore.sanitize import html_to_text, nesting_depth, sanitize_html

ATTACKS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href="&#106;avascript:alert(1)">x</a>',
    '<iframe src="https://evil"></iframe>',
    "<svg onload=alert(1)><script>alert(1)</script></svg>",
    "<style>*{display:none}</style>",
    '<p style="background:url(javascript:alert(1))">x</p>',
    '<object data="x.swf"></object><embed src=x>',
    "<form action=//evil><input name=a></form>",
    '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
    "<body onload=alert(1)>",
    '<div onmouseover="alert(1)">hover</div>',
    "<scr<script>ipt>alert(1)</script>",
    "<!--<script>alert(1)</script>-->",
    '<a href="data:text/html,<script>alert(1)</script>">d</a>',
]


@pytest.mark.parametrize("attack", ATTACKS)
def test_nothing_executable_survives(attack):
    out = sanitize_html(f"<p>前文</p>{attack}<p>后文</p>").lower()
    for bad in (
        "<script",
        "onerror",
        "onload",
        "onmouseover",
        "javascript:",
        "<iframe",
        "<style",
        "<svg",
        "<object",
        "<embed",
        "<form",
        "data:text",
        "style=",
    ):
        assert bad not in out, (attack, out)
    assert "前文" in out and "后文" in out


def test_links_get_rel_and_keep_href():
    out = sanitize_html('<a href="https://example.org/x" target="_blank" class="c">链接</a>')
    assert out == '<a rel="noopener nofollow" href="https://example.org/x">链接</a>'


def test_layout_soup_is_flattened_text_kept():
    out = sanitize_html('<div class="a"><span style="x">中文</span><table><tr><td>单元</td></tr></table></div>')
    assert "中文" in out and "<td>单元</td>" in out and "class" not in out and "<div" not in out


def test_plain_text_keeps_paragraphs_and_unescapes():
    assert html_to_text("<p>第一段 &amp; 更多</p><p>第二段<br>换行</p>") == "第一段 & 更多\n第二段\n换行"


def test_nesting_depth_stops_bombs_early():
    assert nesting_depth("<div>" * 100_000, limit=256) == 257
    assert nesting_depth("<p><b>x</b><br><img src=x></p>") == 2
