"""Articles in a real browser: opened from the results, a script in a title shown as text,
a friendly 404, a very long post read in parts on a phone, remote images never fetched.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode, urlparse

import pytest

from tests.browser.helpers import NO_HSCROLL, PHONE, Page, Served, Tab, _assert_safe_article, expect, params, wait_params

pytestmark = pytest.mark.browser


# -- articles and escaping ----------------------------------------------------------


def test_open_article_from_results(tab: Tab, served: Served):
    page = tab.page
    page.goto("/?" + urlencode({"q": "经济"}))
    first = page.locator(".hit h2 a").first
    title = first.inner_text()
    with page.expect_navigation():
        first.click()
    assert urlparse(page.url).path.startswith("/article/")
    expect(page.locator("article h1")).to_have_text(title)
    assert page.title() == f"{title} - 新闻搜索"
    body = page.locator("article .body")
    expect(body).to_be_visible()
    assert len(body.inner_text().strip()) > 20
    _assert_safe_article(page, served)
    expect(page.locator(".related a").first).to_be_visible()
    # a tag on the article leads to a search filtered by it
    page.locator("article .meta a.tag").first.click()
    page.wait_for_url(lambda u: "tag=" in u)
    expect(page.locator(".facet-value input:checked")).to_have_count(1)
    assert not tab.dialogs and not tab.page_errors


def test_script_in_title_is_shown_as_text(tab: Tab, served: Served):
    page = tab.page
    literal = "<script>alert('title')</script>"
    # full page load
    page.goto("/?" + urlencode({"q": "安全测试"}))
    hit = page.locator(".hit h2 a", has_text="alert")
    expect(hit).to_have_count(1)
    assert literal in hit.inner_text().replace("\n", "")
    # the same results through an htmx swap (allowScriptTags is off, but check)
    page.goto("/")
    page.locator("#q").press_sequentially("安全测试", delay=40)
    wait_params(page, lambda p: p.get("q") == ["安全测试"])
    expect(page.locator(".hit h2 a", has_text="alert")).to_have_count(1)
    with page.expect_navigation():
        page.locator(".hit h2 a", has_text="alert").click()
    expect(page.locator("article h1")).to_contain_text(literal)
    expect(page.locator("article .body")).to_contain_text("安全测试正文")
    expect(page.locator("article .body")).to_contain_text("正常段落")
    _assert_safe_article(page, served)
    expect(page.locator("body")).to_be_visible()  # the post's <style>body{display:none}</style> is gone
    page.wait_for_timeout(300)  # give any onerror/onload handler a chance to fire
    assert tab.dialogs == [], f"a dialog fired: {tab.dialogs}"
    assert not tab.page_errors


# -- error pages --------------------------------------------------------------------


def test_unknown_article_is_a_friendly_404(tab: Tab):
    page = tab.page
    resp = page.goto("/article/no-such-article")
    assert resp.status == 404
    expect(page.locator("main h1")).to_have_text("没有找到这个页面")
    expect(page.locator("#q")).to_be_visible()


# -- very long posts and old images -------------------------------------------------


def _part_label(page: Page) -> tuple[int, int]:
    text = page.locator("nav.parts .part-label").first.inner_text()
    m = re.fullmatch(r"第 (\d+)/(\d+) 部分", text.strip())
    assert m, text
    return int(m.group(1)), int(m.group(2))


def test_long_article_reads_in_parts_on_a_phone(open_tab, served_long: Served):
    from tests.test_web_hardening import BIG_ID, EARLY, LATE

    tab = open_tab(base_url=served_long.url, **PHONE)
    page = tab.page
    page.goto(f"/article/{BIG_ID}")
    part, parts = _part_label(page)
    assert part == 1 and parts >= 30
    assert page.evaluate("document.documentElement.outerHTML.length") < 400_000
    expect(page.locator("article .body")).to_contain_text(EARLY)
    expect(page.locator(".parts-note")).to_contain_text(f"分为 {parts} 部分")
    width, inner = page.evaluate(NO_HSCROLL)
    assert width <= inner + 1, f"part 1 is {width}px wide on a {inner}px screen"
    nav = page.locator("nav.parts").first
    expect(nav.locator("a[rel=prev]")).to_have_count(0)
    box = nav.locator("a[rel=next]").bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= inner and box["height"] >= 24, box

    with page.expect_navigation():
        nav.locator("a[rel=next]").click()
    assert params(page) == {"part": ["2"]} and _part_label(page) == (2, parts)
    assert page.title().endswith(f"（第 2/{parts} 部分） - 新闻搜索")
    with page.expect_navigation():
        page.locator("nav.parts").last.get_by_role("link", name="最后一部分").click()
    assert _part_label(page) == (parts, parts)
    expect(page.locator("article .body")).to_contain_text(LATE)
    expect(page.locator("nav.parts a[rel=next]")).to_have_count(0)
    width, inner = page.evaluate(NO_HSCROLL)
    assert width <= inner + 1, f"the last part is {width}px wide on a {inner}px screen"
    with page.expect_navigation():
        page.locator("nav.parts").first.get_by_role("link", name="第一部分").click()
    assert params(page) == {} and _part_label(page) == (1, parts)
    assert not tab.page_errors


def test_remote_images_are_never_fetched(open_tab, served_long: Served):
    """An <img> stored by an older index stays in the page, and the CSP keeps the
    browser from fetching it: the host it names never hears from the reader."""
    from tests.test_web_hardening import OLD_IMG_ID, TRACKER

    tab = open_tab(base_url=served_long.url)
    page = tab.page
    failed: dict[str, str] = {}
    answered: list[str] = []
    # Chromium reports a request the CSP blocked as a failed request (never sent)
    page.on("requestfailed", lambda r: failed.__setitem__(r.url, r.failure or ""))
    page.on("response", lambda r: answered.append(r.url))
    page.goto(f"/article/{OLD_IMG_ID}")
    expect(page.locator("article .body")).to_contain_text("旧索引里的图片说明文字")
    assert page.locator(f'article .body img[src="{TRACKER}"]').count() == 1
    page.wait_for_timeout(300)
    assert [u for u in answered if not u.startswith(served_long.url)] == []
    assert failed.get(TRACKER) in ("csp", "net::ERR_BLOCKED_BY_CSP"), failed  # blocked, not sent
    assert page.evaluate("document.querySelector('article .body img').naturalWidth") == 0
    assert any(v.startswith("img-src") and TRACKER in v for v in page.evaluate("window.__csp")), page.evaluate("window.__csp")
