"""The timeline above the results in a real browser: one bar per year, month or day of
the date facet's level, each a link that drills down (year → month → day) in place,
whose counts are the date facet's, readable as "2021年：35 篇", and the same without
JavaScript."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest

from tests.browser.helpers import (
    DATE_VALUES,
    Page,
    Tab,
    assert_same_document,
    expect,
    params,
    set_marker,
    total,
    wait_params,
)

pytestmark = pytest.mark.browser

BARS = ".timeline .bars a.bar-link"


def bars(page: Page) -> list[str]:
    """What a screen reader reads for each bar: "2021年：35 篇"."""
    return [t.strip() for t in page.locator(BARS).all_text_contents()]


def facet(page: Page) -> list[str]:
    """The date facet's values, worded as the bars are."""
    values = page.locator(DATE_VALUES)
    words, counts = values.locator(".label").all_inner_texts(), values.locator(".n").all_inner_texts()
    return [f"{lab}：{n} 篇" for lab, n in zip(words, counts, strict=True)]


def count(text: str) -> int:
    return int(re.search(r"：(\d+) 篇$", text).group(1))


def heights(page: Page) -> list[float]:
    return page.locator(f"{BARS} .bar").evaluate_all("els => els.map(e => e.getBoundingClientRect().height)")


def _check_level(page: Page, pattern: str) -> list[str]:
    expect(page.locator(".timeline")).to_be_visible()
    now = bars(page)
    assert now and now == facet(page), "the bars are the date facet's values, with the same counts"
    assert all(re.fullmatch(pattern + r"：\d+ 篇", b) for b in now), now
    # the tallest count draws the tallest bar; every counted bar is drawn
    h = heights(page)
    tallest = max(range(len(now)), key=lambda i: count(now[i]))
    assert h[tallest] == max(h) and min(h) > 0, (now, h)
    assert sum(count(b) for b in now) == total(page)
    return now


def _drill(page: Page, label: str) -> None:
    page.locator(BARS, has_text=re.compile(f"^{re.escape(label)}：")).click()


def test_timeline_drills_down_years_months_days(tab: Tab):
    page = tab.page
    page.goto("/?" + urlencode({"q": "经济"}))
    set_marker(page)
    years = _check_level(page, r"\d{4}年")
    year = max(years, key=count)
    y = int(year[:4])

    _drill(page, year.split("：")[0])
    wait_params(page, lambda p: p.get("from") == [f"{y}-01-01"] and p.get("to") == [f"{y}-12-31"])
    assert total(page) == count(year)
    months = _check_level(page, rf"{y}年\d{{1,2}}月")
    # months without articles are drawn as empty slots between the bars, not as links
    first_m = int(re.match(r"\d{4}年(\d+)月", months[0]).group(1))
    last_m = int(re.match(r"\d{4}年(\d+)月", months[-1]).group(1))
    assert page.locator(".timeline .bars li").count() == last_m - first_m + 1

    month = max(months, key=count)
    m = int(re.match(r"\d{4}年(\d+)月", month).group(1))
    _drill(page, month.split("：")[0])
    wait_params(page, lambda p: p.get("from") == [f"{y}-{m:02d}-01"])
    assert total(page) == count(month)
    days = _check_level(page, rf"{m}月\d{{1,2}}日")

    day = days[0]
    d = int(re.match(r"\d+月(\d+)日", day).group(1))
    _drill(page, day.split("：")[0])
    wait_params(page, lambda p: p.get("from") == p.get("to") == [f"{y}-{m:02d}-{d:02d}"])
    assert total(page) == count(day)
    assert bars(page) == [day]
    expect(page.locator(".chips")).to_contain_text(f"日期：{y}年{m}月{d}日")
    assert_same_document(page)


def test_timeline_without_javascript(open_tab):
    page = open_tab(java_script_enabled=False).page
    page.goto("/?" + urlencode({"q": "经济"}))
    years = _check_level(page, r"\d{4}年")
    with page.expect_navigation():
        _drill(page, years[0].split("：")[0])
    y = int(years[0][:4])
    assert params(page)["from"] == [f"{y}-01-01"] and params(page)["to"] == [f"{y}-12-31"]
    _check_level(page, rf"{y}年\d{{1,2}}月")
