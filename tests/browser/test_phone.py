"""Phones in a real browser: the 筛选 control on the first screen, with the number of
active filters, opening the filters (with JavaScript in place, staying open while the
reader ticks values; without it as a link to #filters), and nothing scrolling sideways
at 320 px, long tags, long facet values and long titles included.

The 320 px pages are served from their own small index: the fixture posts plus one
post whose category, tags, title, body and source link are long unbroken strings.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from tests.browser.helpers import (
    NO_HSCROLL,
    PHONE,
    TAG_VALUES,
    Served,
    checked,
    expect,
    facet_link,
    labels,
    params,
    total,
    wait_params,
)

pytestmark = pytest.mark.browser

NARROW = {**PHONE, "viewport": {"width": 320, "height": 640}}
SCREEN_HEIGHT = PHONE["viewport"]["height"]

LONG_ID = "2022-05-05-long-words"
LONG_CATEGORY = "AVeryLongCategoryNameWithoutAnySpacesThatOverflowsAPhone"
LONG_TAG = "AnExtremelyLongTagNameWithoutSpacesThatRunsOffThePhoneScreen"
LONG_CJK_TAG = "一个非常非常长的中文标签名称用来测试手机屏幕上的换行是否正常"
LONG_POST = f"""---
layout: post
title: "超长词语测试 {"Pneumonoultramicroscopicsilicovolcanoconiosis" * 2}"
date: 2022-05-05 10:00:00 +0800
categories: [ {LONG_CATEGORY} ]
tags: [ {LONG_TAG}, {LONG_CJK_TAG}, 经济 ]
---
<p>超长词语测试正文：{"https://news.example/" + "a" * 120}</p>
<pre>{"x" * 200}</pre>
<table><tr>{"<td>一列很宽的表格内容</td>" * 12}</tr></table>

<https://news.example/{"very-long-path-segment-" * 8}.html>
"""


@pytest.fixture(scope="module")
def long_site(tmp_path_factory) -> Iterator[Served]:
    from indexer.pipeline import run
    from searchapp import create_app
    from tests.browser.conftest import serving
    from tests.conftest import POSTS, make_settings

    folder = tmp_path_factory.mktemp("phone") / "posts"
    shutil.copytree(POSTS, folder)
    (folder / f"{LONG_ID}.md").write_text(LONG_POST, encoding="utf-8")
    settings = make_settings("tantivy", tmp_path_factory.mktemp("phone-idx") / "data", index="news")
    assert run(settings, folder).indexed >= 10
    app = create_app({"SETTINGS_OVERRIDES": {"engine": "tantivy", "data_dir": settings.data_dir, "index": "news"}})
    with serving(app) as state:
        yield state
    assert not state.server_errors, state.server_errors


def _on_first_screen(page, selector: str) -> None:
    box = page.locator(selector).bounding_box()
    width = page.viewport_size["width"]
    assert box and box["y"] >= 0 and box["y"] + box["height"] <= SCREEN_HEIGHT, f"{selector} is not on the first screen: {box}"
    assert box["x"] >= 0 and box["x"] + box["width"] <= width, box


TWO_FILTERS = "/?" + urlencode({"q": "经济", "tag": "经济", "from": "2022-01-01", "to": "2022-12-31"})


def test_filters_control_opens_the_filters_in_place(open_tab):
    tab = open_tab(**PHONE)
    page = tab.page
    page.goto(TWO_FILTERS)
    toggle = page.locator(".filters-toggle")
    expect(toggle).to_be_visible()
    expect(toggle).to_have_text(re.compile(r"^筛选 \(2"))
    _on_first_screen(page, ".filters-toggle")
    expect(page.locator("#filters")).to_be_hidden()
    expect(toggle).to_have_attribute("aria-expanded", "false")

    toggle.click()
    expect(page.locator("#filters")).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    # the filters open right below the control, not 5,000 px down
    first_box = page.locator(f"{TAG_VALUES} input").first
    assert first_box.bounding_box()["y"] < 3 * SCREEN_HEIGHT

    # tick two more values: the filters stay open, and the count follows
    extra = [t for t in labels(page, TAG_VALUES) if t != "经济"][:2]
    facet_link(page, TAG_VALUES, extra[0]).click()
    wait_params(page, lambda p: p.get("tag") == ["经济", extra[0]])
    expect(page.locator("#filters")).to_be_visible()
    expect(page.locator(".filters-toggle")).to_have_text(re.compile(r"^筛选 \(3"))
    facet_link(page, TAG_VALUES, extra[1]).click()
    wait_params(page, lambda p: len(p.get("tag", [])) == 3)
    expect(page.locator("#filters")).to_be_visible()
    expect(page.locator(".filters-toggle")).to_have_text(re.compile(r"^筛选 \(4"))
    expect(facet_link(page, TAG_VALUES, extra[1])).to_be_focused()

    # 查看结果 folds them away and lands on the results
    page.locator(".filters-close").click()
    expect(page.locator("#filters")).to_be_hidden()
    expect(page.locator("#results-list")).to_be_focused()
    page.locator(".filters-toggle").click()
    expect(page.locator("#filters")).to_be_visible()
    page.locator(".filters-toggle").click()
    expect(page.locator("#filters")).to_be_hidden()
    assert not tab.page_errors and not tab.console_errors


def test_filters_control_works_without_javascript(open_tab):
    tab = open_tab(**PHONE, java_script_enabled=False)
    page = tab.page
    page.goto(TWO_FILTERS)
    toggle = page.locator(".filters-toggle")
    expect(toggle).to_have_text(re.compile(r"^筛选 \(2"))
    _on_first_screen(page, ".filters-toggle")
    expect(page.locator("#filters")).to_be_hidden()
    toggle.click()
    expect(page.locator("#filters")).to_be_visible()
    tag = [t for t in labels(page, TAG_VALUES) if t != "经济"][0]
    box = facet_link(page, TAG_VALUES, tag)
    box.check()
    with page.expect_navigation():
        box.locator("xpath=ancestor::form").locator("button.apply").click()
    assert params(page)["tag"] == ["经济", tag] and params(page)["from"] == ["2022-01-01"]
    assert sorted(checked(page)) == sorted(["经济", tag])
    expect(page.locator(".filters-toggle")).to_have_text(re.compile(r"^筛选 \(3"))
    assert total(page) > 0


def test_nothing_scrolls_sideways_at_320px(open_tab, long_site: Served):
    """Long words wrap; a wide table scrolls within itself (and axe finds nothing to
    object to, a scrollable table included)."""
    from tests.browser.test_accessibility import AXE_JS, _axe

    tab = open_tab(**NARROW, base_url=long_site.url, bypass_csp=True)
    page = tab.page
    pages = [
        "/?" + urlencode({"q": "超长词语测试"}),
        "/?" + urlencode({"q": "超长词语测试", "tag": LONG_TAG, "category": LONG_CATEGORY}) + "#filters",
        "/?" + urlencode({"tag": LONG_CJK_TAG, "more": "tag"}) + "#filters",
        f"/article/{LONG_ID}",
        "/?" + urlencode({"q": LONG_TAG + " 不存在的词"}),  # zero results, with ways out
        "/article/" + LONG_TAG * 2,  # no such article
    ]
    for url in pages:
        page.goto(url)
        if "#filters" in url:
            expect(page.locator("#filters")).to_be_visible()
            expect(page.locator("#filters")).to_contain_text(LONG_TAG)
        scroll, client = page.evaluate("[document.scrollingElement.scrollWidth, document.scrollingElement.clientWidth]")
        assert scroll <= client, f"{url}: the page scrolls sideways ({scroll}px on {client}px)"
        width, inner = page.evaluate(NO_HSCROLL)
        assert width <= inner, f"{url}: page is {width}px wide on a {inner}px screen"
        if AXE_JS.exists():
            assert _axe(page) == [], url
    # the long words are really on the pages tested
    page.goto(pages[0])
    expect(page.locator(".hit .meta").first).to_contain_text(LONG_TAG)
