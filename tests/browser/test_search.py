"""Searching in a real browser: typing updates the results in place, relaxations when
nothing is found, paging and sorting, and htmx at work under the CSP.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode, urlparse

import pytest

from tests.browser.helpers import (
    DATE_VALUES,
    TAG_VALUES,
    Tab,
    _dates,
    api_total,
    assert_same_document,
    expect,
    facet_link,
    labels,
    set_marker,
    titles,
    total,
    wait_params,
)

pytestmark = pytest.mark.browser


# -- typing -------------------------------------------------------------------------


def test_typing_updates_results_in_place(tab: Tab):
    page = tab.page
    page.goto("/")
    expect(page.locator(".hit").first).to_be_visible()
    latest = titles(page)
    set_marker(page)
    page.locator("#q").click()
    page.locator("#q").press_sequentially("经济", delay=60)  # no Enter, no submit
    wait_params(page, lambda p: p.get("q") == ["经济"])
    expected = api_total(tab, q="经济")
    assert expected > 20
    expect(page.locator("#results-heading")).to_contain_text("“经济”的搜索结果")
    expect(page.locator("#search-status")).to_have_text(f"找到 {expected} 篇文章")
    expect(page.locator(".results-head .count")).to_contain_text(str(expected))
    assert titles(page) != latest
    assert len(page.locator(".hit mark").all()) > 0, "the query words should be highlighted"
    assert page.title().startswith("经济")
    assert page.input_value("#q") == "经济"
    expect(page.locator("#q")).to_be_focused()  # typing goes on in the same box
    assert_same_document(page)
    assert not tab.page_errors


def test_search_box_follows_a_relaxation_link(tab: Tab):
    page = tab.page
    page.goto("/?" + urlencode({"q": "经济 zzzz不存在的词", "tag": "经济"}))
    page.locator(".empty ul.relax a", has_text="只搜索").click()
    wait_params(page, lambda p: p == {"q": ["经济"]})
    expect(page.locator("#q")).to_have_value("经济", timeout=2000)
    hidden = page.locator("#search-form input[type=hidden]").evaluate_all("els => els.map(e => e.name + '=' + e.value)")
    assert hidden == [], f"the form would send stale filters: {hidden}"


# -- paging and sorting -------------------------------------------------------------


def test_paging_and_sorting(tab: Tab):
    page = tab.page
    page.goto("/?" + urlencode({"q": "经济"}))
    set_marker(page)
    page1 = titles(page)
    assert len(page1) == 20
    page.locator("nav.pager a[rel=next]").click()
    wait_params(page, lambda p: p.get("page") == ["2"])
    expect(page.locator("nav.pager strong[aria-current=page]")).to_have_text("2")
    page2 = titles(page)
    assert page2 and page2[0] != page1[0]
    assert not set(page1) & set(page2)
    assert page.locator("ol.hits").get_attribute("start") == "21"

    page.locator("nav.sort a", has_text="最新").click()
    wait_params(page, lambda p: p.get("sort") == ["newest"] and "page" not in p)  # a new order starts on page 1
    expect(page.locator("nav.sort strong[aria-current]")).to_have_text("最新")
    newest = _dates(page)
    assert len(newest) == 20
    assert newest == sorted(newest, reverse=True)
    page.locator("nav.pager a[rel=next]").click()
    wait_params(page, lambda p: p.get("sort") == ["newest"] and p.get("page") == ["2"])
    expect(page.locator("nav.pager strong[aria-current=page]")).to_have_text("2")
    later = _dates(page)
    assert later == sorted(later, reverse=True) and later[0] <= newest[-1]

    page.locator("nav.sort a", has_text="最早").click()
    wait_params(page, lambda p: p.get("sort") == ["oldest"])
    expect(page.locator("nav.sort strong[aria-current]")).to_have_text("最早")
    oldest = _dates(page)
    assert oldest == sorted(oldest) and oldest[0] <= newest[-1]
    assert_same_document(page)


# -- zero results -------------------------------------------------------------------


def test_zero_results_offer_relaxations_that_find_something(tab: Tab):
    page = tab.page
    page.goto("/?" + urlencode({"q": "经济 zzzz不存在的词", "tag": "经济"}))
    expect(page.locator(".empty")).to_contain_text("没有找到")
    expect(page.locator(".hit")).to_have_count(0)
    relax = page.locator(".empty ul.relax a")
    assert relax.count() >= 1
    promised = page.locator(".empty ul.relax li").first.inner_text()
    n = int(re.search(r"（(\d+) 篇）", promised).group(1))
    set_marker(page)
    relax.first.click()
    wait_params(page, lambda p: p.get("q") != ["经济 zzzz不存在的词"] or "tag" not in p)
    expect(page.locator(".hit").first).to_be_visible()
    assert total(page) == n
    assert_same_document(page)


def test_zero_results_for_a_single_unknown_word_offer_a_way_out(tab: Tab):
    page = tab.page
    page.goto("/?" + urlencode({"q": "zzzz不存在的词", "tag": "经济"}))
    expect(page.locator(".empty")).to_contain_text("没有找到")
    links = page.locator(".empty a")
    assert links.count() >= 1
    with page.expect_response(lambda r: urlparse(r.url).path == "/"):
        links.first.click()
    expect(page.locator(".hit").first).to_be_visible(timeout=3000)


# -- CSP ----------------------------------------------------------------------------


def test_htmx_works_under_the_csp(tab: Tab):
    page = tab.page
    resp = page.goto("/")
    csp = resp.headers.get("content-security-policy", "")
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    set_marker(page)
    page.locator("#q").press_sequentially("经济", delay=60)
    wait_params(page, lambda p: p.get("q") == ["经济"])
    tag = labels(page, TAG_VALUES)[0]
    facet_link(page, TAG_VALUES, tag).click()
    wait_params(page, lambda p: "tag" in p)
    page.locator("nav.pager a[rel=next]").click()
    wait_params(page, lambda p: p.get("page") == ["2"])
    page.locator("nav.sort a", has_text="最新").click()
    wait_params(page, lambda p: p.get("sort") == ["newest"])
    page.locator(DATE_VALUES).first.click()
    wait_params(page, lambda p: "from" in p)
    expect(page.locator("nav.crumbs")).to_be_visible()
    assert_same_document(page)
    assert page.evaluate("window.__settles") >= 5, "htmx should have swapped every step"
    csp_console = [m for m in tab.console_errors if "Content Security Policy" in m or "Refused to" in m]
    assert csp_console == [], csp_console
    assert page.evaluate("window.__csp") == []
    assert not tab.page_errors


@pytest.mark.parametrize("typed", ["經濟", "经济"])
def test_suggestions_offered_while_typing_contain_the_typed_text(tab: Tab, typed: str):
    """The search box's suggestions (the datalist htmx fills while typing) all
    contain what was typed, in either script: 經濟 and 经济 are one text."""
    from searchcore.analysis import normalize

    page = tab.page
    page.goto("/")
    with page.expect_response(lambda r: urlparse(r.url).path == "/suggest"):
        page.locator("#q").fill(typed)
    options = page.locator("#suggestions option")
    expect(options.first).to_be_attached()
    values = [options.nth(i).get_attribute("value") or "" for i in range(options.count())]
    assert values and all("经济" in normalize(v) for v in values), values
