"""Dates in a real browser: open-ended ranges, and drilling down years and months with breadcrumbs."""

from __future__ import annotations

import re
from datetime import date, timedelta
from urllib.parse import urlencode

import pytest

from tests.browser.helpers import (
    DATE_VALUES,
    Served,
    Tab,
    _dates,
    assert_same_document,
    expect,
    labels,
    set_marker,
    total,
    wait_params,
)

pytestmark = pytest.mark.browser


def test_open_ended_date_range(tab: Tab, served: Served):
    page = tab.page
    for bounds in ({"from": "2022-01-01"}, {"to": "2021-12-31"}):
        resp = page.goto("/?" + urlencode({"q": "经济", **bounds}))
        served.server_errors.clear()  # a 500 is what this test is about
        assert resp.status == 200, f"{bounds}: HTTP {resp.status}"
        expect(page.locator(".hit").first).to_be_visible()
        for d in _dates(page):
            assert d.date() >= date(2022, 1, 1) if "from" in bounds else d.date() <= date(2021, 12, 31)


# -- date drill-down ----------------------------------------------------------------


def test_date_drill_down_and_breadcrumbs(tab: Tab):
    page = tab.page
    page.goto("/?" + urlencode({"q": "经济"}))
    set_marker(page)
    all_total = total(page)
    years = labels(page, DATE_VALUES)
    assert years and all(re.fullmatch(r"\d{4}年", y) for y in years), years
    expect(page.locator("nav.crumbs")).to_have_count(0)

    year_link = page.locator(DATE_VALUES).nth(len(years) // 2)
    year = year_link.locator(".label").inner_text()
    year_count = int(year_link.locator(".n").inner_text())
    y = int(year[:4])
    year_link.click()
    wait_params(page, lambda p: p.get("from") == [f"{y}-01-01"] and p.get("to") == [f"{y}-12-31"])
    expect(page.locator("nav.crumbs")).to_contain_text("全部日期")
    expect(page.locator("nav.crumbs")).to_contain_text(year)
    assert total(page) == year_count, "the year bucket promised this many"
    months = labels(page, DATE_VALUES)
    assert months and all(re.fullmatch(rf"{y}年\d{{1,2}}月", m) for m in months), months
    for d in _dates(page):
        assert d.year == y

    month_link = page.locator(DATE_VALUES).first
    month_count = int(month_link.locator(".n").inner_text())
    m = int(re.fullmatch(r"\d{4}年(\d{1,2})月", month_link.locator(".label").inner_text()).group(1))
    last = (date(y + (m == 12), m % 12 + 1, 1) - timedelta(days=1)).isoformat()
    month_link.click()
    wait_params(page, lambda p: p.get("from") == [f"{y}-{m:02d}-01"] and p.get("to") == [last])
    expect(page.locator("nav.crumbs a")).to_have_text(["全部日期", year, f"{m}月"])
    assert total(page) == month_count
    for d in _dates(page):
        assert (d.year, d.month) == (y, m)

    page.locator("nav.crumbs a", has_text=year).click()
    wait_params(page, lambda p: p.get("from") == [f"{y}-01-01"] and p.get("to") == [f"{y}-12-31"])
    expect(page.locator("nav.crumbs a")).to_have_text(["全部日期", year])
    assert total(page) == year_count

    page.locator("nav.crumbs a", has_text="全部日期").click()
    wait_params(page, lambda p: "from" not in p and "to" not in p)
    expect(page.locator("nav.crumbs")).to_have_count(0)
    assert labels(page, DATE_VALUES) == years
    assert total(page) == all_total
    assert_same_document(page)
