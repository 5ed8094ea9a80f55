"""Facets in a real browser: a tag facet toggles disjunctively, in place, and typing keeps it."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from tests.browser.helpers import (
    TAG_VALUES,
    Tab,
    assert_same_document,
    checked,
    expect,
    facet_link,
    labels,
    params,
    set_marker,
    total,
    wait_params,
)

pytestmark = pytest.mark.browser


def test_tag_facet_toggles_disjunctively(tab: Tab):
    page = tab.page
    page.goto("/?" + urlencode({"q": "经济"}))
    set_marker(page)
    before = labels(page, TAG_VALUES)
    assert len(before) >= 3, before
    all_total = total(page)
    first, second = before[1], before[2]

    facet_link(page, TAG_VALUES, first).click()
    wait_params(page, lambda p: p.get("tag") == [first])
    link = facet_link(page, TAG_VALUES, first)
    expect(link).to_have_attribute("aria-checked", "true")
    expect(page.locator(".chips")).to_contain_text(first)
    after = labels(page, TAG_VALUES)
    assert set(before) <= set(after), "disjunctive facet: the other tags stay listed"
    assert checked(page) == [first]
    assert page.locator(f"{TAG_VALUES}[aria-checked=false]").count() == len(after) - 1
    one_total = total(page)
    assert 0 < one_total < all_total
    for meta in page.locator(".hit .meta").all_inner_texts():
        assert f"#{first}" in meta
    expect(page.locator("#search-status")).to_have_text(f"找到 {one_total} 篇文章")

    # a second tag widens the result (OR within a facet)
    facet_link(page, TAG_VALUES, second).click()
    wait_params(page, lambda p: p.get("tag") == [first, second])
    expect(facet_link(page, TAG_VALUES, second)).to_have_attribute("aria-checked", "true")
    assert total(page) >= one_total
    assert sorted(checked(page)) == sorted([first, second])

    # clicking a selected value again removes it
    facet_link(page, TAG_VALUES, second).click()
    wait_params(page, lambda p: p.get("tag") == [first])
    expect(facet_link(page, TAG_VALUES, second)).to_have_attribute("aria-checked", "false")
    facet_link(page, TAG_VALUES, first).click()
    wait_params(page, lambda p: "tag" not in p)
    expect(facet_link(page, TAG_VALUES, first)).to_have_attribute("aria-checked", "false")
    expect(page.locator(".chips")).to_have_count(0)
    assert total(page) == all_total

    # and so does the chip's ×
    facet_link(page, TAG_VALUES, first).click()
    expect(page.locator(".chips")).to_contain_text(first)
    page.locator(".chips a", has_text=first).click()
    wait_params(page, lambda p: "tag" not in p)
    expect(page.locator(".chips")).to_have_count(0)
    assert checked(page) == []
    assert params(page)["q"] == ["经济"]
    assert_same_document(page)


def test_typing_after_choosing_a_facet_keeps_it(tab: Tab):
    page = tab.page
    page.goto("/?" + urlencode({"q": "经济"}))
    tag = labels(page, TAG_VALUES)[0]
    facet_link(page, TAG_VALUES, tag).click()
    wait_params(page, lambda p: p.get("tag") == [tag])
    page.locator("#q").press("End")
    page.locator("#q").press_sequentially(" 发展", delay=60)
    wait_params(page, lambda p: p.get("q") == ["经济 发展"])
    assert params(page).get("tag") == [tag], f"the tag filter was dropped: {page.url}"
