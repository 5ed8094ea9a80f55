"""Accessibility in a real browser: the keyboard path, axe-core on the main pages, and a
phone-sized screen without horizontal scrolling.
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from tests.browser.helpers import (
    CATEGORY_VALUES,
    NO_HSCROLL,
    PHONE,
    ROOT,
    TAG_VALUES,
    Page,
    Tab,
    expect,
    facet_link,
    labels,
    wait_params,
)

pytestmark = pytest.mark.browser


# -- keyboard -----------------------------------------------------------------------


def _focused(page: Page) -> dict:
    return page.evaluate(
        """() => {
          const el = document.activeElement;
          const s = getComputedStyle(el);
          const r = el.getBoundingClientRect();
          return {tag: el.tagName, id: el.id, cls: el.className, text: (el.innerText || '').trim(),
                  outline: s.outlineStyle, width: parseFloat(s.outlineWidth), left: r.left, top: r.top};
        }"""
    )


def test_keyboard_skip_link_then_search_box(tab: Tab):
    page = tab.page
    page.goto("/?" + urlencode({"q": "经济"}))
    page.keyboard.press("Tab")
    skip = _focused(page)
    assert skip["cls"] == "skip" and skip["text"] == "跳到搜索结果", skip
    assert skip["outline"] != "none" and skip["width"] >= 2, skip
    assert skip["left"] >= 0 and skip["top"] >= 0, "the skip link shows on screen when focused"
    seen = []
    for _ in range(3):
        page.keyboard.press("Tab")
        now = _focused(page)
        seen.append(now)
        assert now["outline"] != "none" and now["width"] >= 2, now
        if now["id"] == "q":
            break
    assert seen[-1]["id"] == "q", f"the search box should come right after the header links: {seen}"
    # the skip link really skips: Enter lands on the results list, one Tab on the first result
    page.keyboard.press("Shift+Tab")
    while _focused(page)["cls"] != "skip":
        page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")
    expect(page.locator("#results-list")).to_be_focused()
    page.keyboard.press("Tab")
    first = page.locator(".hit h2 a").first
    expect(first).to_be_focused()
    now = _focused(page)
    assert now["outline"] != "none" and now["width"] >= 2, now


def test_skip_link_reaches_the_first_result_after_filtering(tab: Tab):
    """Also once htmx has swapped the results (a tag ticked, so more chips and a new
    timeline stand between the top of the results and the first hit)."""
    page = tab.page
    page.goto("/?" + urlencode({"q": "经济"}))
    facet_link(page, TAG_VALUES, labels(page, TAG_VALUES)[0]).click()
    wait_params(page, lambda p: "tag" in p)
    expect(page.locator(".chips")).to_be_visible()
    page.locator("a.skip").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#results-list")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator(".hit h2 a").first).to_be_focused()


# -- axe ----------------------------------------------------------------------------


AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")


def _axe(page: Page) -> list[dict]:
    page.add_script_tag(path=str(AXE_JS))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]][:5],
        }
        for v in result["violations"]
    ]


def test_accessibility_axe(open_tab):
    if not AXE_JS.exists():
        pytest.fail(f"{AXE_JS.relative_to(ROOT)} is missing: run npm ci (scripts/setup.sh)", pytrace=False)
    tab = open_tab(bypass_csp=True)
    page = tab.page
    report: dict[str, list[dict]] = {}

    page.goto("/?" + urlencode({"q": "经济"}))
    facet_link(page, TAG_VALUES, labels(page, TAG_VALUES)[0]).click()
    wait_params(page, lambda p: "tag" in p)
    category = labels(page, CATEGORY_VALUES)[0]
    facet_link(page, CATEGORY_VALUES, category).click()
    wait_params(page, lambda p: "category" in p)
    expect(page.locator(".facet-value input:checked")).to_have_count(2)
    report["search with facets (after htmx swaps)"] = _axe(page)

    with page.expect_navigation():
        page.locator(".hit h2 a").first.click()
    report["article"] = _axe(page)

    page.goto("/?" + urlencode({"q": "经济 zzzz不存在的词", "tag": "经济"}))
    report["zero results"] = _axe(page)

    # the timeline, drilled down to months in place, with a date chip
    page.goto("/?" + urlencode({"q": "经济"}))
    page.locator(".timeline a.bar-link").first.click()
    wait_params(page, lambda p: "from" in p)
    expect(page.locator(".chips")).to_contain_text("日期：")
    report["timeline at month level (after an htmx swap)"] = _axe(page)

    # a phone, the filters opened by the 筛选 control and a value ticked in them
    phone = open_tab(bypass_csp=True, **PHONE).page
    phone.goto("/?" + urlencode({"q": "经济", "tag": "经济"}))
    phone.locator(".filters-toggle").click()
    expect(phone.locator("#filters")).to_be_visible()
    report["phone, filters closed then opened"] = _axe(phone)
    facet_link(phone, CATEGORY_VALUES, labels(phone, CATEGORY_VALUES)[0]).click()
    wait_params(phone, lambda p: "category" in p)
    expect(phone.locator("#filters")).to_be_visible()
    report["phone, filters open after a ticked value"] = _axe(phone)

    blocking = {where: [v for v in vs if v["impact"] in BLOCKING] for where, vs in report.items()}
    blocking = {k: v for k, v in blocking.items() if v}
    others = {where: [(v["id"], v["impact"]) for v in vs if v["impact"] not in BLOCKING] for where, vs in report.items()}
    print("axe minor/moderate findings:", others)
    assert not blocking, f"axe found serious/critical violations: {blocking}"
    assert not any(others.values()), f"axe found minor/moderate violations: {others}"


def test_a_bad_parameter_marks_its_control(open_tab):
    """A day that does not exist: the page answers with the rest (400), and the 从 date
    control is marked invalid and described by the reason, for screen readers too."""
    page = open_tab(bypass_csp=True).page
    resp = page.goto("/?" + urlencode({"q": "经济", "from": "2021-13-45"}))
    assert resp.status == 400
    box = page.locator("form.range input[name=from]")
    expect(box).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#" + box.get_attribute("aria-describedby"))).to_contain_text("2021-13-45")
    expect(page.locator("form.range input[name=to]")).not_to_have_attribute("aria-invalid", "true")
    if AXE_JS.exists():
        assert _axe(page) == []


# -- phone --------------------------------------------------------------------------


def test_phone_layout_has_no_horizontal_scroll(open_tab):
    tab = open_tab(**PHONE)
    page = tab.page
    pages = [
        "/?" + urlencode({"q": "经济", "tag": "经济", "category": "finance"}),
        "/?" + urlencode({"q": "经济 zzzz不存在的词", "tag": "经济"}),
        "/?" + urlencode({"q": "英国"}),
    ]
    for url in pages:
        page.goto(url)
        width, inner = page.evaluate(NO_HSCROLL)
        assert width <= inner + 1, f"{url}: page is {width}px wide on a {inner}px screen"
        box = page.locator("#q").bounding_box()
        assert box and page.locator("#q").is_visible(), url
        assert box["x"] >= 0 and box["x"] + box["width"] <= inner and box["y"] < 844, f"{url}: search box off screen {box}"
    # every fixture article, raw outlet HTML included
    page.goto("/?" + urlencode({"sort": "oldest"}))
    hrefs = page.locator(".hit h2 a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    for href in hrefs[:6] + [h for h in hrefs if "xss" in h]:
        page.goto(href)
        width, inner = page.evaluate(NO_HSCROLL)
        assert width <= inner + 1, f"{href}: page is {width}px wide on a {inner}px screen"


# -- favicon ------------------------------------------------------------------------


def test_favicon_on_pages_and_at_favicon_ico(tab: Tab):
    """Pages name an SVG icon; a browser showing a JSON answer (no <link rel=icon>)
    asks for /favicon.ico, which answers the same icon instead of a console 404."""
    page = tab.page
    page.goto("/?" + urlencode({"q": "经济"}))
    href = page.locator("link[rel=icon]").get_attribute("href")
    icon = page.request.get(href)
    assert icon.ok and icon.headers["content-type"].startswith("image/svg+xml"), (href, icon.status)
    ico = page.request.get("/favicon.ico")
    assert ico.ok and ico.headers["content-type"].startswith("image/svg+xml") and ico.body() == icon.body()
    page.goto("/api/search?" + urlencode({"q": "经济"}))
    page.wait_for_timeout(500)  # the browser's own request for /favicon.ico
    assert not tab.console_errors, tab.console_errors
