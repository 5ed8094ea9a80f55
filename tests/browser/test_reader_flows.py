"""A reader's flows in a real browser: one clock (a time shown is on its date facet's
day), no dead ends (a range typed backwards, a page past the end, back to one's own
search from an article, an unknown article), and a source link that fits a 320 px
phone.

Served from its own index: the mixed corpus plus one post written in Paris at
20:39 +02:00 on 14 July 2021, which is 02:39 on 15 July in Beijing, with a long
source link.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from urllib.parse import urlencode, urlparse

import pytest

from tests.browser.helpers import DATE_VALUES, NO_HSCROLL, Served, Tab, expect, params, titles, wait_params

pytestmark = pytest.mark.browser

PARIS_ID = "2021-07-14-巴黎 国庆"
PARIS_TITLE = "巴黎国庆夜烟花照亮埃菲尔铁塔"
PARIS_URL = "https://www.rfi.fr/cn/" + "%E6%B3%95%E5%9B%BD" * 30 + "-20210714-fireworks-over-the-eiffel-tower-paris"
PARIS_POST = f"""---
layout: post
title: "{PARIS_TITLE}"
date: 2021-07-14 20:39:00 +0200
categories: world
tags: 法国 节日
---
<p>法国国庆日当晚，巴黎埃菲尔铁塔上空燃放烟花，数十万市民和游客观看。</p>

<{PARIS_URL}>
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory, mixed_corpus) -> Iterator[Served]:
    from indexer.pipeline import run
    from searchapp import create_app
    from tests.browser.conftest import serving
    from tests.conftest import make_settings

    folder = tmp_path_factory.mktemp("reader") / "posts"
    shutil.copytree(mixed_corpus, folder)
    (folder / f"{PARIS_ID}.md").write_text(PARIS_POST, encoding="utf-8")
    settings = make_settings("tantivy", tmp_path_factory.mktemp("reader-idx") / "data", index="news")
    assert run(settings, folder).indexed > 300
    app = create_app({"SETTINGS_OVERRIDES": {"engine": "tantivy", "data_dir": settings.data_dir, "index": "news"}})
    with serving(app) as state:
        yield state
    assert not state.server_errors, state.server_errors


@pytest.fixture
def reader(open_tab, site: Served) -> Tab:
    return open_tab(base_url=site.url)


def test_a_time_shown_is_on_its_date_facet_day(reader: Tab):
    page = reader.page
    page.goto("/?" + urlencode({"q": "巴黎国庆", "from": "2021-07-01", "to": "2021-07-31"}))
    hit = page.locator(".hit", has_text=PARIS_TITLE)
    expect(hit.locator("time")).to_have_text("2021-07-15 02:39")
    # the month's day buckets: the article's day is the 15th, the day it is shown on
    days = page.locator(DATE_VALUES)
    expect(days).to_have_count(1)
    assert "from=2021-07-15" in days.first.get_attribute("href") and "to=2021-07-15" in days.first.get_attribute("href")
    days.first.click()
    wait_params(page, lambda p: p.get("from") == ["2021-07-15"] and p.get("to") == ["2021-07-15"])
    expect(page.locator(".hit", has_text=PARIS_TITLE).locator("time")).to_have_text("2021-07-15 02:39")
    page.goto("/?" + urlencode({"q": "巴黎国庆", "from": "2021-07-14", "to": "2021-07-14"}))
    expect(page.locator(".hit")).to_have_count(0)
    # the article page: Beijing time, and the time in Paris beside it
    page.goto("/?" + urlencode({"q": "巴黎国庆"}))
    with page.expect_navigation():
        page.locator(".hit h2 a", has_text=PARIS_TITLE).click()
    meta = page.locator("article .meta")
    expect(meta).to_contain_text("2021-07-15 02:39（北京时间）")
    expect(meta).to_contain_text("当地时间 2021-07-14 20:39 +02:00")
    assert meta.locator("time").first.get_attribute("datetime") == "2021-07-15T02:39:00+08:00"


def test_a_range_typed_backwards_is_searched_the_right_way_round(reader: Tab):
    page = reader.page
    page.goto("/?" + urlencode({"q": "经济"}))
    form = page.locator("form.range")
    form.locator("input[name=from]").fill("2024-12-31")
    form.locator("input[name=to]").fill("2022-01-01")
    form.locator("button[type=submit]").click()
    wait_params(page, lambda p: p.get("from") == ["2022-01-01"] and p.get("to") == ["2024-12-31"])
    expect(page.locator(".hit").first).to_be_visible()
    expect(page.locator(".error")).to_have_count(0)
    expect(page.locator("form.range input[name=from]")).to_have_value("2022-01-01")
    expect(page.locator("form.range input[name=to]")).to_have_value("2024-12-31")
    assert page.input_value("#q") == "经济"
    for t in page.locator(".hit time").evaluate_all("els => els.map(e => e.dateTime)"):
        assert "2022-01-01" <= t[:10] <= "2024-12-31", t


def test_a_page_past_the_end_leads_to_the_last_page(reader: Tab):
    page = reader.page
    pages = page.request.get("/api/search").json()["pages"]
    assert pages >= 2
    page.goto(f"/?page={pages + 3}")
    empty = page.locator(".empty")
    expect(empty).to_contain_text(f"共 {pages} 页")
    expect(empty.get_by_role("link", name="第一页")).to_have_attribute("href", "/")
    empty.get_by_role("link", name=f"最后一页（第 {pages} 页）").click()
    wait_params(page, lambda p: p.get("page") == [str(pages)])
    expect(page.locator(".hit").first).to_be_visible()


def test_back_to_the_readers_own_search_from_an_article(reader: Tab):
    page = reader.page
    page.goto("/?" + urlencode({"q": "经济", "tag": "经济"}))
    page.locator("nav.pager a[rel=next]").click()
    wait_params(page, lambda p: p.get("page") == ["2"])
    expect(page.locator(".hit").first).to_be_visible()
    before = {"params": params(page), "titles": titles(page)}
    assert before["params"] == {"q": ["经济"], "tag": ["经济"], "page": ["2"]}
    with page.expect_navigation():
        page.locator(".hit h2 a").first.click()
    assert urlparse(page.url).path.startswith("/article/")
    related = page.locator(".related a")
    if related.count():  # a related article keeps the way back
        with page.expect_navigation():
            related.first.click()
        assert urlparse(page.url).path.startswith("/article/")
    with page.expect_navigation():
        page.get_by_role("link", name="← 返回搜索").click()
    assert {"params": params(page), "titles": titles(page)} == before
    assert page.input_value("#q") == "经济"


def test_an_unknown_article_offers_a_search_for_its_words(reader: Tab):
    page = reader.page
    resp = page.goto("/article/2021-07-15-巴黎 国庆")
    assert resp.status == 404
    expect(page.locator("main h1")).to_have_text("没有找到这个页面")
    assert page.input_value("#q") == "巴黎 国庆"
    with page.expect_navigation():
        page.locator("main").get_by_role("link", name="巴黎 国庆").click()
    assert params(page) == {"q": ["巴黎 国庆"]}
    expect(page.locator(".hit h2 a", has_text=PARIS_TITLE)).to_be_visible()


def test_the_source_link_fits_a_small_phone(open_tab, site: Served):
    tab = open_tab(base_url=site.url, viewport={"width": 320, "height": 640}, is_mobile=True, has_touch=True)
    page = tab.page
    page.goto(f"/article/{PARIS_ID}")
    link = page.locator(".source a")
    expect(link).to_have_text("rfi.fr ↗")
    assert link.get_attribute("href") == link.get_attribute("title") == PARIS_URL
    width, inner = page.evaluate(NO_HSCROLL)
    assert width <= inner + 1, f"the article is {width}px wide on a {inner}px screen"


def test_a_refused_request_through_htmx_is_shown_in_place(reader: Tab):
    """A 400 (a parameter the page could not read) is answered with the query,
    filters and results kept and the reason shown: htmx must swap it in rather than
    leave the page as it was with nothing said (htmx 2 swaps no 4xx by default)."""
    page = reader.page
    page.goto("/?" + urlencode({"q": "经济"}))
    expect(page.locator(".hit").first).to_be_visible()
    # A state no link of ours makes, riding along with a reader's tick: page=abc.
    page.evaluate(
        """() => { const f = document.querySelector('section.facet form.facet-form');
                   const i = document.createElement('input'); i.type = 'hidden'; i.name = 'page'; i.value = 'abc';
                   f.appendChild(i); }"""
    )
    box = page.locator("section.facet form.facet-form input[type=checkbox]").first
    box.check()
    expect(page.locator("#main .error[role=alert]")).to_contain_text("页码")
    expect(page.locator(".hit").first).to_be_visible()
    assert params(page).get("q") == ["经济"] and "abc" in params(page).get("page", [])
    assert page.input_value("#q") == "经济"
