"""Facets in a real browser: a tag facet toggles disjunctively, in place, and typing keeps
it; its values are real checkboxes that Space toggles; the chips say which facet."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from tests.browser.helpers import (
    CATEGORY_VALUES,
    TAG_VALUES,
    Tab,
    _history,
    assert_same_document,
    checked,
    expect,
    facet_link,
    labels,
    params,
    set_marker,
    titles,
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
    expect(link).to_be_checked()
    expect(page.locator(".chips")).to_contain_text(first)
    after = labels(page, TAG_VALUES)
    assert set(before) <= set(after), "disjunctive facet: the other tags stay listed"
    assert checked(page) == [first]
    assert page.locator(f"{TAG_VALUES} input:not(:checked)").count() == len(after) - 1
    one_total = total(page)
    assert 0 < one_total < all_total
    for meta in page.locator(".hit .meta").all_inner_texts():
        assert f"#{first}" in meta
    expect(page.locator("#search-status")).to_have_text(f"找到 {one_total} 篇文章")

    # a second tag widens the result (OR within a facet)
    facet_link(page, TAG_VALUES, second).click()
    wait_params(page, lambda p: p.get("tag") == [first, second])
    expect(facet_link(page, TAG_VALUES, second)).to_be_checked()
    assert total(page) >= one_total
    assert sorted(checked(page)) == sorted([first, second])

    # clicking a selected value again removes it
    facet_link(page, TAG_VALUES, second).click()
    wait_params(page, lambda p: p.get("tag") == [first])
    expect(facet_link(page, TAG_VALUES, second)).not_to_be_checked()
    facet_link(page, TAG_VALUES, first).click()
    wait_params(page, lambda p: "tag" not in p)
    expect(facet_link(page, TAG_VALUES, first)).not_to_be_checked()
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


def test_space_toggles_a_facet_checkbox(tab: Tab):
    """A facet value is a checkbox: Space ticks it (not scrolls the page), the results
    change in place, focus stays on it for the next one, the live region announces the
    count, and Back restores the state before."""
    page = tab.page
    page.goto("/?" + urlencode({"q": "经济"}))
    set_marker(page)
    page.evaluate("document.getElementById('search-status').__kept = true")
    all_total, all_titles = total(page), titles(page)
    tag = labels(page, TAG_VALUES)[0]
    box = facet_link(page, TAG_VALUES, tag)
    expect(box).to_have_attribute("type", "checkbox")
    box.focus()
    scroll = page.evaluate("window.scrollY")

    page.keyboard.press("Space")
    wait_params(page, lambda p: p.get("tag") == [tag])
    expect(facet_link(page, TAG_VALUES, tag)).to_be_checked()
    expect(facet_link(page, TAG_VALUES, tag)).to_be_focused()
    one_total = total(page)
    assert one_total < all_total and titles(page) != all_titles
    expect(page.locator("#search-status")).to_have_text(f"找到 {one_total} 篇文章")
    assert page.evaluate("document.getElementById('search-status').__kept === true"), (
        "the live region must stay the same element to be announced"
    )
    assert page.evaluate("window.scrollY") == scroll

    # Space again, on the same (new) box: unticked
    page.keyboard.press("Space")
    wait_params(page, lambda p: "tag" not in p)
    expect(facet_link(page, TAG_VALUES, tag)).not_to_be_checked()
    assert total(page) == all_total

    # Back restores the ticked state, and Back again the first
    _history(page, page.go_back)
    assert params(page).get("tag") == [tag]
    expect(facet_link(page, TAG_VALUES, tag)).to_be_checked()
    assert total(page) == one_total
    _history(page, page.go_back)
    assert "tag" not in params(page)
    expect(facet_link(page, TAG_VALUES, tag)).not_to_be_checked()
    assert_same_document(page)


def test_chips_say_which_facet_and_each_removes_its_filter(tab: Tab):
    """BBC is a category and a tag of the same post: two chips, told apart by facet; a
    date range reads as the year, month or day it is."""
    page = tab.page
    page.goto("/?" + urlencode({"category": "BBC", "tag": "BBC", "from": "2020-07-01", "to": "2020-07-31"}))
    chips = page.locator(".chips a:not(.clear)")
    expect(chips).to_have_text(["分类：BBC ×", "标签：BBC ×", "日期：2020年7月 ×"])
    expect(page.locator(".chips a.clear")).to_have_text("清除全部")
    expect(page.locator(".filters-toggle")).to_contain_text("筛选 (3")

    page.locator(".chips a", has_text="分类：BBC").click()
    wait_params(page, lambda p: "category" not in p and p.get("tag") == ["BBC"] and "from" in p)
    expect(chips).to_have_text(["标签：BBC ×", "日期：2020年7月 ×"])
    expect(facet_link(page, TAG_VALUES, "BBC")).to_be_checked()
    expect(facet_link(page, CATEGORY_VALUES, "BBC")).not_to_be_checked()

    page.locator(".chips a", has_text="日期").click()
    wait_params(page, lambda p: "from" not in p and "to" not in p and p.get("tag") == ["BBC"])
    expect(chips).to_have_text(["标签：BBC ×"])

    page.locator(".chips a.clear").click()
    wait_params(page, lambda p: not ({"tag", "category", "from", "to"} & set(p)))
    expect(page.locator(".chips")).to_have_count(0)

    for (lo, hi), words in {
        ("2021-01-01", "2021-12-31"): "日期：2021年",
        ("2021-07-14", "2021-07-14"): "日期：2021年7月14日",
        ("2021-07-01", "2021-08-15"): "日期：2021-07-01 至 2021-08-15",
    }.items():
        page.goto("/?" + urlencode({"from": lo, "to": hi}))
        expect(chips).to_have_text([f"{words} ×"])
