"""History in a real browser: back, forward and reload restore what the reader saw."""

from __future__ import annotations

import pytest

from tests.browser.helpers import (
    TAG_VALUES,
    Tab,
    _history,
    assert_same_document,
    expect,
    facet_link,
    labels,
    set_marker,
    snapshot,
    wait_params,
)

pytestmark = pytest.mark.browser


def test_back_forward_and_reload_restore_state(tab: Tab):
    page = tab.page
    page.goto("/")
    expect(page.locator(".hit").first).to_be_visible()
    states = [snapshot(page)]

    page.locator("#q").press_sequentially("经济", delay=60)
    wait_params(page, lambda p: p.get("q") == ["经济"])
    expect(page.locator("#results-heading")).to_contain_text("经济")
    states.append(snapshot(page))

    tag = labels(page, TAG_VALUES)[0]
    facet_link(page, TAG_VALUES, tag).click()
    wait_params(page, lambda p: p.get("tag") == [tag])
    expect(facet_link(page, TAG_VALUES, tag)).to_be_checked()
    states.append(snapshot(page))

    page.locator("nav.sort a", has_text="最新").click()
    wait_params(page, lambda p: p.get("sort") == ["newest"])
    expect(page.locator("nav.sort strong[aria-current]")).to_have_text("最新")
    states.append(snapshot(page))
    assert len({repr(s) for s in states}) == len(states), "each step should change what is shown"

    for expected in reversed(states[:-1]):
        _history(page, page.go_back)
        assert snapshot(page) == expected
    for expected in states[1:3]:
        _history(page, page.go_forward)
        assert snapshot(page) == expected
    page.reload()
    assert snapshot(page) == states[2]
    # after all that, the page still works in place
    set_marker(page)
    facet_link(page, TAG_VALUES, tag).click()
    wait_params(page, lambda p: "tag" not in p)
    assert_same_document(page)
    assert not tab.page_errors
