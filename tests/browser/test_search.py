"""What a reader sees and does, in a real browser: headless Debian Chromium driven by
Playwright against the app served over HTTP (embedded tantivy engine only).

Each test gets a fresh browser context. The app runs in a background thread on a
free port over the hand-written fixture posts plus 300 synthetic ones.

Without /usr/bin/chromium (or the ``playwright`` package) the module is skipped
with a loud reason, except under CI (CI=true) where that is a failure.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import pytest

from tests.conftest import make_settings

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent.parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI") == "true"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HTMX_JS = ROOT / "searchapp" / "static" / "vendor" / "htmx.min.js"
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"
TIMEOUT_MS = 10_000

_MISSING = None
try:
    from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    _MISSING = "the Python package playwright is not installed (pip install -e '.[test]')"
else:
    if not Path(CHROMIUM).exists():
        _MISSING = f"{CHROMIUM} is missing (apt-get install chromium, or scripts/setup.sh)"
if _MISSING and not IN_CI:
    pytest.skip(f"!!! BROWSER TESTS NOT RUN: {_MISSING} !!!", allow_module_level=True)

# Records every `window` event the tests wait on; runs before the page's own scripts
# (Playwright injects it through the DevTools protocol, so the CSP does not apply).
INIT_SCRIPT = """
(() => {
  window.__restores = 0; window.__settles = 0; window.__csp = [];
  document.addEventListener("htmx:historyRestore", () => { window.__restores += 1; });
  document.addEventListener("htmx:afterSettle", () => { window.__settles += 1; });
  document.addEventListener("securitypolicyviolation", (e) => {
    window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline"));
  });
})();
"""


# -- the served app ---------------------------------------------------------------


@dataclass
class Served:
    url: str
    server_errors: list[str] = field(default_factory=list)


@contextmanager
def serving(app) -> Iterator[Served]:
    """Serve ``app`` over HTTP on a free port in a background thread, recording 5xx answers."""
    from werkzeug.serving import make_server

    state = Served(url="")

    def recording(environ, start_response):
        def start(status, headers, exc_info=None):
            if status.startswith("5"):
                state.server_errors.append(f"{status} {environ.get('PATH_INFO')}?{environ.get('QUERY_STRING', '')}")
            return start_response(status, headers, exc_info)

        return app(environ, start)

    wz_log = logging.getLogger("werkzeug")
    old_level = wz_log.level
    wz_log.setLevel(logging.WARNING)  # no line per request
    server = make_server("127.0.0.1", 0, recording, threaded=True)
    state.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, name="browser-test-server", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
        wz_log.setLevel(old_level)


@pytest.fixture(scope="module")
def served(tmp_path_factory, mixed_corpus) -> Iterator[Served]:
    if _MISSING:
        pytest.fail(f"browser tests are required under CI but {_MISSING}", pytrace=False)
    if not HTMX_JS.exists():
        pytest.fail(f"{HTMX_JS.relative_to(ROOT)} is missing: run scripts/setup.sh", pytrace=False)
    from indexer.pipeline import run
    from searchapp import create_app

    settings = make_settings("tantivy", tmp_path_factory.mktemp("browser") / "data", index="news")
    report = run(settings, mixed_corpus)
    assert report.indexed > 300, report.summary()
    app = create_app({"SETTINGS_OVERRIDES": {"engine": "tantivy", "data_dir": settings.data_dir, "index": "news"}})
    with serving(app) as state:
        yield state


@pytest.fixture(autouse=True)
def no_server_errors(served: Served):
    """Every test also checks that the server never answered 5xx."""
    served.server_errors.clear()
    yield
    errors = list(served.server_errors)
    served.server_errors.clear()
    assert not errors, f"the server answered 5xx: {errors}"


@pytest.fixture(scope="module")
def browser(served) -> Iterator[Browser]:
    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
    finally:
        pw.stop()


@dataclass
class Tab:
    """A page with what the reader would notice: dialogs, console errors, page errors."""

    page: Page
    dialogs: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)


@pytest.fixture
def open_tab(browser: Browser, served: Served) -> Iterator[Callable[..., Tab]]:
    """Factory: a fresh context (kwargs go to new_context) with one page."""
    contexts: list[BrowserContext] = []

    def make(**context_kwargs) -> Tab:
        context = browser.new_context(**{"base_url": served.url, "locale": "zh-CN", **context_kwargs})
        contexts.append(context)
        context.set_default_timeout(TIMEOUT_MS)
        if context_kwargs.get("java_script_enabled", True):
            context.add_init_script(INIT_SCRIPT)
        page = context.new_page()
        tab = Tab(page)

        def on_dialog(dialog):
            tab.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("console", lambda m: tab.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: tab.page_errors.append(str(e)))
        return tab

    yield make
    for c in contexts:
        c.close()


@pytest.fixture
def tab(open_tab) -> Tab:
    return open_tab()


# -- helpers ------------------------------------------------------------------------

TAG_VALUES = "section[aria-labelledby=facet-tag] a.facet-value"
CATEGORY_VALUES = "section[aria-labelledby=facet-category] a.facet-value"
DATE_VALUES = "section.facet.date ul a.facet-value"


def params(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlparse(page.url).query)


def wait_params(page: Page, check: Callable[[dict[str, list[str]]], bool]) -> None:
    """Wait until the address bar's query string satisfies ``check`` (pushState included)."""
    page.wait_for_url(lambda u: check(parse_qs(urlparse(u).query)), wait_until="commit")


def titles(page: Page) -> list[str]:
    return page.locator(".hit h2 a").all_inner_texts()


def labels(page: Page, selector: str) -> list[str]:
    return page.locator(f"{selector} .label").all_inner_texts()


def checked(page: Page) -> list[str]:
    return page.locator("a.facet-value[aria-checked=true] .label").all_inner_texts()


def total(page: Page) -> int:
    text = page.locator(".results-head .count").inner_text()
    m = re.search(r"(\d+)", text)
    assert m, text
    return int(m.group(1))


def snapshot(page: Page) -> dict:
    """The whole visible state a reader would compare after back/forward/reload."""
    return {
        "params": params(page),
        "q": page.input_value("#q"),
        "titles": titles(page),
        "checked": checked(page),
        "chips": page.locator(".chips a:not(.clear)").all_inner_texts(),
        "heading": page.locator("#results-heading").inner_text(),
        "title": page.title(),
    }


def facet_link(page: Page, selector: str, label: str):
    return page.locator(selector).filter(has=page.locator(".label", has_text=re.compile(f"^{re.escape(label)}$")))


def set_marker(page: Page) -> None:
    """A window property that only survives if no full page load happens."""
    page.evaluate("window.__marker = 'still-here'")


def assert_same_document(page: Page) -> None:
    assert page.evaluate("window.__marker") == "still-here", "a full page load happened: htmx should have swapped #main in place"


def api_total(tab: Tab, **query) -> int:
    resp = tab.page.request.get("/api/search?" + urlencode(query, doseq=True))
    assert resp.ok, resp.status
    return resp.json()["total"]


# -- 1. typing --------------------------------------------------------------------------


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


# -- 2. facets ----------------------------------------------------------------------------


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


def test_search_box_follows_a_relaxation_link(tab: Tab):
    page = tab.page
    page.goto("/?" + urlencode({"q": "经济 zzzz不存在的词", "tag": "经济"}))
    page.locator(".empty ul.relax a", has_text="只搜索").click()
    wait_params(page, lambda p: p == {"q": ["经济"]})
    expect(page.locator("#q")).to_have_value("经济", timeout=2000)
    hidden = page.locator("#search-form input[type=hidden]").evaluate_all("els => els.map(e => e.name + '=' + e.value)")
    assert hidden == [], f"the form would send stale filters: {hidden}"


# -- 3. history ---------------------------------------------------------------------------


def _history(page: Page, action: Callable[[], object]) -> None:
    before = page.evaluate("window.__restores")
    action()
    page.wait_for_function("n => window.__restores > n", arg=before)


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
    expect(facet_link(page, TAG_VALUES, tag)).to_have_attribute("aria-checked", "true")
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


# -- 4. paging and sorting ---------------------------------------------------------------


def _dates(page: Page) -> list[datetime]:
    return [datetime.fromisoformat(d) for d in page.locator(".hit time").evaluate_all("els => els.map(e => e.dateTime)")]


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


# -- 5. articles and escaping -------------------------------------------------------------

NO_ACTIVE_CONTENT = """
() => {
  const body = document.querySelector('article .body');
  const bad = [];
  for (const el of body.querySelectorAll('*')) {
    for (const a of el.attributes) {
      if (/^on/i.test(a.name)) bad.push(el.tagName + ' ' + a.name);
      if (/^\\s*javascript:/i.test(a.value)) bad.push(el.tagName + ' ' + a.name + '=' + a.value);
    }
    if (['SCRIPT', 'IFRAME', 'OBJECT', 'EMBED', 'STYLE', 'FORM'].includes(el.tagName)) bad.push(el.tagName);
  }
  const scripts = [...document.scripts].map(s => s.src || 'inline: ' + s.textContent.slice(0, 40));
  return {bad, scripts};
}
"""


def _assert_safe_article(page: Page, served: Served) -> None:
    found = page.evaluate(NO_ACTIVE_CONTENT)
    assert found["bad"] == [], found
    # our two scripts, at their versioned URLs (?v=<content hash>, see searchapp/caching.py)
    scripts = sorted(found["scripts"])
    assert [s.split("?v=")[0] for s in scripts] == [f"{served.url}/static/app.js", f"{served.url}/static/vendor/htmx.min.js"]
    assert all(re.search(r"\?v=[0-9a-f]{12}$", s) for s in scripts), scripts


def test_open_article_from_results(tab: Tab, served: Served):
    page = tab.page
    page.goto("/?" + urlencode({"q": "经济"}))
    first = page.locator(".hit h2 a").first
    title = first.inner_text()
    with page.expect_navigation():
        first.click()
    assert urlparse(page.url).path.startswith("/article/")
    expect(page.locator("article h1")).to_have_text(title)
    assert page.title() == f"{title} - 新闻搜索"
    body = page.locator("article .body")
    expect(body).to_be_visible()
    assert len(body.inner_text().strip()) > 20
    _assert_safe_article(page, served)
    expect(page.locator(".related a").first).to_be_visible()
    # a tag on the article leads to a search filtered by it
    page.locator("article .meta a.tag").first.click()
    page.wait_for_url(lambda u: "tag=" in u)
    expect(page.locator("a.facet-value[aria-checked=true]")).to_have_count(1)
    assert not tab.dialogs and not tab.page_errors


def test_script_in_title_is_shown_as_text(tab: Tab, served: Served):
    page = tab.page
    literal = "<script>alert('title')</script>"
    # full page load
    page.goto("/?" + urlencode({"q": "安全测试"}))
    hit = page.locator(".hit h2 a", has_text="alert")
    expect(hit).to_have_count(1)
    assert literal in hit.inner_text().replace("\n", "")
    # the same results through an htmx swap (allowScriptTags is off, but check)
    page.goto("/")
    page.locator("#q").press_sequentially("安全测试", delay=40)
    wait_params(page, lambda p: p.get("q") == ["安全测试"])
    expect(page.locator(".hit h2 a", has_text="alert")).to_have_count(1)
    with page.expect_navigation():
        page.locator(".hit h2 a", has_text="alert").click()
    expect(page.locator("article h1")).to_contain_text(literal)
    expect(page.locator("article .body")).to_contain_text("安全测试正文")
    expect(page.locator("article .body")).to_contain_text("正常段落")
    _assert_safe_article(page, served)
    expect(page.locator("body")).to_be_visible()  # the post's <style>body{display:none}</style> is gone
    page.wait_for_timeout(300)  # give any onerror/onload handler a chance to fire
    assert tab.dialogs == [], f"a dialog fired: {tab.dialogs}"
    assert not tab.page_errors


# -- 6. without JavaScript ------------------------------------------------------------------


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

    category = labels(page, CATEGORY_VALUES)[0]
    with page.expect_navigation():
        facet_link(page, CATEGORY_VALUES, category).click()
    assert params(page) == {"q": ["经济"], "category": [category]}
    expect(facet_link(page, CATEGORY_VALUES, category)).to_have_attribute("aria-checked", "true")
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


def test_open_ended_date_range(tab: Tab, served: Served):
    page = tab.page
    for bounds in ({"from": "2022-01-01"}, {"to": "2021-12-31"}):
        resp = page.goto("/?" + urlencode({"q": "经济", **bounds}))
        served.server_errors.clear()  # a 500 is what this test is about
        assert resp.status == 200, f"{bounds}: HTTP {resp.status}"
        expect(page.locator(".hit").first).to_be_visible()
        for d in _dates(page):
            assert d.date() >= date(2022, 1, 1) if "from" in bounds else d.date() <= date(2021, 12, 31)


# -- 7. date drill-down --------------------------------------------------------------------


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


# -- 8. zero results -------------------------------------------------------------------------


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


# -- 9. keyboard -----------------------------------------------------------------------------


def _focused(page: Page) -> dict:
    return page.evaluate(
        """() => {
          const el = document.activeElement;
          const s = getComputedStyle(el);
          const r = el.getBoundingClientRect();
          return {tag: el.tagName, id: el.id, cls: el.className, text: (el.innerText || '').trim(),
                  outline: s.outlineStyle, width: parseFloat(s.outlineWidth), left: r.left, top: r.top};
        }"""
    )


def test_keyboard_skip_link_then_search_box(tab: Tab):
    page = tab.page
    page.goto("/?" + urlencode({"q": "经济"}))
    page.keyboard.press("Tab")
    skip = _focused(page)
    assert skip["cls"] == "skip" and skip["text"] == "跳到搜索结果", skip
    assert skip["outline"] != "none" and skip["width"] >= 2, skip
    assert skip["left"] >= 0 and skip["top"] >= 0, "the skip link shows on screen when focused"
    seen = []
    for _ in range(3):
        page.keyboard.press("Tab")
        now = _focused(page)
        seen.append(now)
        assert now["outline"] != "none" and now["width"] >= 2, now
        if now["id"] == "q":
            break
    assert seen[-1]["id"] == "q", f"the search box should come right after the header links: {seen}"
    # the skip link really skips: Enter moves focus into the results
    page.keyboard.press("Shift+Tab")
    while _focused(page)["cls"] != "skip":
        page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")
    page.wait_for_function("document.activeElement && document.activeElement.id === 'main'")
    page.keyboard.press("Tab")
    assert page.evaluate("document.getElementById('main').contains(document.activeElement)")


# -- 10. accessibility ------------------------------------------------------------------------

BLOCKING = ("serious", "critical")


def _axe(page: Page) -> list[dict]:
    page.add_script_tag(path=str(AXE_JS))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]][:5],
        }
        for v in result["violations"]
    ]


def test_accessibility_axe(open_tab):
    if not AXE_JS.exists():
        pytest.fail(f"{AXE_JS.relative_to(ROOT)} is missing: run npm ci (scripts/setup.sh)", pytrace=False)
    tab = open_tab(bypass_csp=True)
    page = tab.page
    report: dict[str, list[dict]] = {}

    page.goto("/?" + urlencode({"q": "经济"}))
    facet_link(page, TAG_VALUES, labels(page, TAG_VALUES)[0]).click()
    wait_params(page, lambda p: "tag" in p)
    category = labels(page, CATEGORY_VALUES)[0]
    facet_link(page, CATEGORY_VALUES, category).click()
    wait_params(page, lambda p: "category" in p)
    expect(page.locator("a.facet-value[aria-checked=true]")).to_have_count(2)
    report["search with facets (after htmx swaps)"] = _axe(page)

    with page.expect_navigation():
        page.locator(".hit h2 a").first.click()
    report["article"] = _axe(page)

    page.goto("/?" + urlencode({"q": "经济 zzzz不存在的词", "tag": "经济"}))
    report["zero results"] = _axe(page)

    blocking = {where: [v for v in vs if v["impact"] in BLOCKING] for where, vs in report.items()}
    blocking = {k: v for k, v in blocking.items() if v}
    others = {where: [(v["id"], v["impact"]) for v in vs if v["impact"] not in BLOCKING] for where, vs in report.items()}
    print("axe minor/moderate findings:", others)
    assert not blocking, f"axe found serious/critical violations: {blocking}"


# -- 11. phone -------------------------------------------------------------------------------

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 3}
NO_HSCROLL = "() => [document.scrollingElement.scrollWidth, window.innerWidth]"


def test_phone_layout_has_no_horizontal_scroll(open_tab):
    tab = open_tab(**PHONE)
    page = tab.page
    pages = [
        "/?" + urlencode({"q": "经济", "tag": "经济", "category": "finance"}),
        "/?" + urlencode({"q": "经济 zzzz不存在的词", "tag": "经济"}),
        "/?" + urlencode({"q": "英国"}),
    ]
    for url in pages:
        page.goto(url)
        width, inner = page.evaluate(NO_HSCROLL)
        assert width <= inner + 1, f"{url}: page is {width}px wide on a {inner}px screen"
        box = page.locator("#q").bounding_box()
        assert box and page.locator("#q").is_visible(), url
        assert box["x"] >= 0 and box["x"] + box["width"] <= inner and box["y"] < 844, f"{url}: search box off screen {box}"
    # every fixture article, raw outlet HTML included
    page.goto("/?" + urlencode({"sort": "oldest"}))
    hrefs = page.locator(".hit h2 a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    for href in hrefs[:6] + [h for h in hrefs if "xss" in h]:
        page.goto(href)
        width, inner = page.evaluate(NO_HSCROLL)
        assert width <= inner + 1, f"{href}: page is {width}px wide on a {inner}px screen"


# -- 12. CSP --------------------------------------------------------------------------------


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


# -- error pages -----------------------------------------------------------------------------


def test_unknown_article_is_a_friendly_404(tab: Tab):
    page = tab.page
    resp = page.goto("/article/no-such-article")
    assert resp.status == 404
    expect(page.locator("main h1")).to_have_text("没有找到这个页面")
    expect(page.locator("#q")).to_be_visible()


# -- 13. very long posts and old images ------------------------------------------------------


@pytest.fixture(scope="module")
def served_long(tmp_path_factory) -> Iterator[Served]:
    """Its own small index (the fixture posts), plus a 9 MB post and a post stored with
    a remote <img> as older indexes kept them (see tests/test_web_hardening.py)."""
    from indexer.pipeline import run
    from searchapp import create_app
    from searchcore.engines import open_engine
    from tests.conftest import POSTS
    from tests.test_web_hardening import big_post, old_image_post

    settings = make_settings("tantivy", tmp_path_factory.mktemp("browser-long") / "data", index="news")
    run(settings, POSTS)
    engine = open_engine(settings)
    writer = engine.writer()
    try:
        assert writer.upsert([big_post(), old_image_post()]) == []
        writer.commit()
    finally:
        writer.close()
        engine.close()
    app = create_app({"SETTINGS_OVERRIDES": {"engine": "tantivy", "data_dir": settings.data_dir, "index": "news"}})
    with serving(app) as state:
        yield state
    assert not state.server_errors, state.server_errors


def _part_label(page: Page) -> tuple[int, int]:
    text = page.locator("nav.parts .part-label").first.inner_text()
    m = re.fullmatch(r"第 (\d+)/(\d+) 部分", text.strip())
    assert m, text
    return int(m.group(1)), int(m.group(2))


def test_long_article_reads_in_parts_on_a_phone(open_tab, served_long: Served):
    from tests.test_web_hardening import BIG_ID, EARLY, LATE

    tab = open_tab(base_url=served_long.url, **PHONE)
    page = tab.page
    page.goto(f"/article/{BIG_ID}")
    part, parts = _part_label(page)
    assert part == 1 and parts >= 30
    assert page.evaluate("document.documentElement.outerHTML.length") < 400_000
    expect(page.locator("article .body")).to_contain_text(EARLY)
    expect(page.locator(".parts-note")).to_contain_text(f"分为 {parts} 部分")
    width, inner = page.evaluate(NO_HSCROLL)
    assert width <= inner + 1, f"part 1 is {width}px wide on a {inner}px screen"
    nav = page.locator("nav.parts").first
    expect(nav.locator("a[rel=prev]")).to_have_count(0)
    box = nav.locator("a[rel=next]").bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= inner and box["height"] >= 24, box

    with page.expect_navigation():
        nav.locator("a[rel=next]").click()
    assert params(page) == {"part": ["2"]} and _part_label(page) == (2, parts)
    assert page.title().endswith(f"（第 2/{parts} 部分） - 新闻搜索")
    with page.expect_navigation():
        page.locator("nav.parts").last.get_by_role("link", name="最后一部分").click()
    assert _part_label(page) == (parts, parts)
    expect(page.locator("article .body")).to_contain_text(LATE)
    expect(page.locator("nav.parts a[rel=next]")).to_have_count(0)
    width, inner = page.evaluate(NO_HSCROLL)
    assert width <= inner + 1, f"the last part is {width}px wide on a {inner}px screen"
    with page.expect_navigation():
        page.locator("nav.parts").first.get_by_role("link", name="第一部分").click()
    assert params(page) == {} and _part_label(page) == (1, parts)
    assert not tab.page_errors


def test_remote_images_are_never_fetched(open_tab, served_long: Served):
    """An <img> stored by an older index stays in the page, and the CSP keeps the
    browser from fetching it: the host it names never hears from the reader."""
    from tests.test_web_hardening import OLD_IMG_ID, TRACKER

    tab = open_tab(base_url=served_long.url)
    page = tab.page
    failed: dict[str, str] = {}
    answered: list[str] = []
    # Chromium reports a request the CSP blocked as a failed request (never sent)
    page.on("requestfailed", lambda r: failed.__setitem__(r.url, r.failure or ""))
    page.on("response", lambda r: answered.append(r.url))
    page.goto(f"/article/{OLD_IMG_ID}")
    expect(page.locator("article .body")).to_contain_text("旧索引里的图片说明文字")
    assert page.locator(f'article .body img[src="{TRACKER}"]').count() == 1
    page.wait_for_timeout(300)
    assert [u for u in answered if not u.startswith(served_long.url)] == []
    assert failed.get(TRACKER) in ("csp", "net::ERR_BLOCKED_BY_CSP"), failed  # blocked, not sent
    assert page.evaluate("document.querySelector('article .body img').naturalWidth") == 0
    assert any(v.startswith("img-src") and TRACKER in v for v in page.evaluate("window.__csp")), page.evaluate("window.__csp")
