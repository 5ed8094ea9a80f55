"""Without JavaScript: searching, facets, paging and the date form all work as plain links and GET forms."""

from __future__ import annotations

import pytest

from tests.browser.helpers import CATEGORY_VALUES, expect, facet_link, labels, params, titles, total

pytestmark = pytest.mark.browser


def test_everything_works_without_javascript(open_tab):
    tab = open_tab(java_script_enabled=False)
    page = tab.page
    page.goto("/")
    page.locator("#q").fill("经济")
    with page.expect_navigation():
        page.locator("#q").press("Enter")
    assert params(page) == {"q": ["经济"]}
    expect(page.locator("#search-status")).to_contain_text("找到")
    assert len(titles(page)) == 20

    # a facet is a GET form of checkboxes: tick, then 应用
    category = labels(page, CATEGORY_VALUES)[0]
    facet_link(page, CATEGORY_VALUES, category).check()
    form = facet_link(page, CATEGORY_VALUES, category).locator("xpath=ancestor::form")
    expect(form.locator("button.apply")).to_be_visible()
    with page.expect_navigation():
        form.locator("button.apply").click()
    assert params(page) == {"q": ["经济"], "category": [category]}
    expect(facet_link(page, CATEGORY_VALUES, category)).to_be_checked()
    assert total(page) > 20, "pick a category with a second page"
    page1 = titles(page)

    with page.expect_navigation():
        page.locator("nav.pager a[rel=next]").click()
    assert params(page) == {"q": ["经济"], "category": [category], "page": ["2"]}
    assert titles(page) and titles(page)[0] not in page1

    # the form carries the filters along as hidden fields
    page.locator("#q").fill("发展")
    with page.expect_navigation():
        page.locator("#search-form button[type=submit]").click()
    assert params(page) == {"q": ["发展"], "category": [category]}

    # and the date range form is a plain GET form too
    page.locator("form.range input[name=from]").fill("2022-01-01")
    page.locator("form.range input[name=to]").fill("2022-12-31")
    with page.expect_navigation():
        page.locator("form.range button").click()
    assert params(page)["from"] == ["2022-01-01"] and params(page)["category"] == [category]
    for d in page.locator(".hit time").evaluate_all("els => els.map(e => e.getAttribute('datetime'))"):
        assert "2022-01-01" <= d < "2023-01-01"
