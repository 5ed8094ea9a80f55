"""Typing in a real browser: input methods and history.

Chinese readers type through an input method: "jingji" is composed, then 经济 is
chosen. Chromium emulates one over the DevTools protocol (``Input.imeSetComposition``
with the pinyin so far, ``Input.insertText`` with the chosen characters); the page sees
compositionstart/compositionupdate/compositionend as with a real one. Nothing may be
searched (or suggested) for the pinyin.

History: typing replaces the current entry (the first search of a typing session pushes
one), while Enter, a filter, a sort or a page each add one; back and forward restore
each state exactly.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from tests.browser.helpers import (
    TAG_VALUES,
    Tab,
    _history,
    checked,
    expect,
    facet_link,
    labels,
    params,
    snapshot,
    titles,
    wait_params,
)

pytestmark = pytest.mark.browser

PAUSE_MS = 600  # well over the 300 ms typing debounce


def record_requests(page) -> list[tuple[str, str]]:
    """(path, q) of every search or suggestion request the page makes from now on."""
    seen: list[tuple[str, str]] = []

    def on_request(req):
        u = urlparse(req.url)
        if u.path in ("/", "/suggest"):
            seen.append((u.path, parse_qs(u.query).get("q", [""])[0]))

    page.on("request", on_request)
    return seen


def history_length(page) -> int:
    return page.evaluate("history.length")


def test_no_search_while_an_input_method_composes(tab: Tab):
    page = tab.page
    page.goto("/")
    expect(page.locator(".hit").first).to_be_visible()
    before = snapshot(page)
    url = page.url
    box = page.locator("#q")
    box.focus()
    seen = record_requests(page)
    ime = page.context.new_cdp_session(page)

    for pinyin in ("j", "ji", "jin", "jing", "jingj", "jingji"):
        ime.send("Input.imeSetComposition", {"text": pinyin, "selectionStart": len(pinyin), "selectionEnd": len(pinyin)})
        page.wait_for_timeout(PAUSE_MS)
    assert page.input_value("#q") == "jingji", "the emulated input method should show its pinyin in the box"
    assert seen == [], f"searched or suggested while composing: {seen}"
    assert page.url == url
    after = snapshot(page)
    assert {**after, "q": ""} == before, "the results changed while composing"
    expect(page.locator(".empty")).to_have_count(0)

    ime.send("Input.insertText", {"text": "经济"})  # the reader chooses 经济: the composition ends
    wait_params(page, lambda p: p.get("q") == ["经济"])
    expect(page.locator("#results-heading")).to_contain_text("“经济”的搜索结果")
    assert titles(page) and titles(page) != before["titles"]
    assert page.input_value("#q") == "经济"
    page.wait_for_timeout(PAUSE_MS)  # let any late request show itself
    assert ("/", "经济") in seen and ("/suggest", "经济") in seen, seen
    assert all(q == "经济" for _, q in seen), f"a request carried the pinyin: {seen}"
    assert not tab.page_errors


def test_suggestions_wait_for_the_composition_to_end(tab: Tab):
    page = tab.page
    page.goto("/?q=%E7%BB%8F%E6%B5%8E")  # 经济
    expect(page.locator(".hit").first).to_be_visible()
    box = page.locator("#q")
    box.focus()
    page.keyboard.press("End")
    seen = record_requests(page)
    ime = page.context.new_cdp_session(page)
    for pinyin in ("z", "ze", "zen", "zeng"):
        ime.send("Input.imeSetComposition", {"text": pinyin, "selectionStart": len(pinyin), "selectionEnd": len(pinyin)})
        page.wait_for_timeout(PAUSE_MS)
    assert page.input_value("#q") == "经济zeng"
    assert seen == [], f"requests while composing: {seen}"
    ime.send("Input.insertText", {"text": "增"})
    wait_params(page, lambda p: p.get("q") == ["经济增"])
    page.wait_for_timeout(PAUSE_MS)
    assert sorted(set(seen)) == [("/", "经济增"), ("/suggest", "经济增")], seen


def test_a_composition_started_before_the_pause_cancels_it(tab: Tab):
    """A reader who chooses 经济 and goes straight on to the next pinyin (well within the
    debounce) is still typing: nothing is searched until the next word is chosen."""
    page = tab.page
    page.goto("/")
    expect(page.locator(".hit").first).to_be_visible()
    page.locator("#q").focus()
    seen = record_requests(page)
    ime = page.context.new_cdp_session(page)
    ime.send("Input.imeSetComposition", {"text": "jingji", "selectionStart": 6, "selectionEnd": 6})
    ime.send("Input.insertText", {"text": "经济"})
    for pinyin in ("z", "ze", "zen", "zeng", "zengz", "zengzh", "zengzha", "zengzhan", "zengzhang"):
        ime.send("Input.imeSetComposition", {"text": pinyin, "selectionStart": len(pinyin), "selectionEnd": len(pinyin)})
        page.wait_for_timeout(150 if pinyin == "z" else PAUSE_MS)
    assert seen == [], f"requests while composing: {seen}"
    ime.send("Input.insertText", {"text": "增长"})
    wait_params(page, lambda p: p.get("q") == ["经济增长"])
    page.wait_for_timeout(PAUSE_MS)
    assert sorted(set(seen)) == [("/", "经济增长"), ("/suggest", "经济增长")], seen


def test_typing_adds_one_history_entry(tab: Tab):
    page = tab.page
    page.goto("/")
    expect(page.locator(".hit").first).to_be_visible()
    start = snapshot(page)
    length = history_length(page)
    box = page.locator("#q")
    box.focus()
    typed = ""
    for ch in "美国 大选":
        typed += ch
        box.press_sequentially(ch)
        wait_params(page, lambda p, words=typed.strip(): p.get("q") == [words])
        page.wait_for_timeout(PAUSE_MS)
        assert history_length(page) == length + 1, f"after {typed!r}"
    expect(page.locator("#results-heading")).to_contain_text("美国 大选")
    typed_state = snapshot(page)

    _history(page, page.go_back)
    assert snapshot(page) == start, "Back should return to the state before typing"
    _history(page, page.go_forward)
    assert snapshot(page) == typed_state
    assert history_length(page) == length + 1
    assert not tab.page_errors


def test_enter_filters_sorting_and_pages_each_add_one_entry(tab: Tab):
    page = tab.page
    page.goto("/")
    expect(page.locator(".hit").first).to_be_visible()
    states = [snapshot(page)]
    lengths = [history_length(page)]

    def step(action, state_check) -> None:
        """Do ``action``, wait for its URL and for htmx to settle #main, record the state."""
        settles = page.evaluate("window.__settles")
        action()
        wait_params(page, state_check)
        page.wait_for_function("n => window.__settles > n && !document.querySelector('.htmx-request')", arg=settles)
        page.wait_for_timeout(PAUSE_MS // 2)  # a stray second update would land here
        states.append(snapshot(page))
        lengths.append(history_length(page))

    box = page.locator("#q")
    # typing, then a pause: the typing session pushes one entry
    step(lambda: box.press_sequentially("中国", delay=40), lambda p: p.get("q") == ["中国"])
    expect(page.locator("#results-heading")).to_contain_text("“中国”")
    states[-1] = snapshot(page)
    assert lengths[-1] == lengths[-2] + 1
    # Enter on the same words: the results again, no second entry for the same URL
    settles = page.evaluate("window.__settles")
    box.press("Enter")
    page.wait_for_function("n => window.__settles > n", arg=settles)
    page.wait_for_timeout(PAUSE_MS)
    assert history_length(page) == lengths[-1]
    assert snapshot(page) == states[-1]

    # new words and Enter before the pause: one entry
    step(lambda: (box.fill("经济"), box.press("Enter")), lambda p: p.get("q") == ["经济"])
    expect(page.locator("#results-heading")).to_contain_text("“经济”")
    step(lambda: page.locator("nav.pager a[rel=next]").click(), lambda p: p.get("page") == ["2"])
    step(lambda: page.locator("nav.sort a", has_text="最新").click(), lambda p: p.get("sort") == ["newest"])
    tag = labels(page, TAG_VALUES)[0]
    step(lambda: facet_link(page, TAG_VALUES, tag).click(), lambda p: p.get("tag") == [tag])
    assert checked(page) == [tag]

    assert lengths == list(range(lengths[0], lengths[0] + len(lengths))), f"one entry per step: {lengths}"
    assert len({repr(s) for s in states}) == len(states), "each step should change what is shown"
    for expected in reversed(states[:-1]):
        _history(page, page.go_back)
        assert snapshot(page) == expected
        assert page.input_value("#q") == (params(page).get("q") or [""])[0]
    for expected in states[1:]:
        _history(page, page.go_forward)
        assert snapshot(page) == expected
    assert not tab.page_errors


def test_typing_after_back_starts_a_new_entry(tab: Tab):
    """Back ends the typing session: typing again pushes, it does not overwrite the
    entry Back went to."""
    page = tab.page
    page.goto("/")
    expect(page.locator(".hit").first).to_be_visible()
    box = page.locator("#q")
    box.press_sequentially("经济", delay=40)
    wait_params(page, lambda p: p.get("q") == ["经济"])
    box.press_sequentially("增长", delay=40)
    wait_params(page, lambda p: p.get("q") == ["经济增长"])
    length = history_length(page)
    _history(page, page.go_back)
    assert params(page) == {}
    _history(page, page.go_forward)
    assert params(page) == {"q": ["经济增长"]}
    box.press("End")
    box.press_sequentially(" 中国", delay=40)
    wait_params(page, lambda p: p.get("q") == ["经济增长 中国"])
    assert history_length(page) == length + 1
    _history(page, page.go_back)
    assert params(page) == {"q": ["经济增长"]}
    expect(page.locator("#q")).to_have_value("经济增长")
