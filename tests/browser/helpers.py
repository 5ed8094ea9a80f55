"""What the browser tests share: selectors, and reading the page as a reader would
(the query string, titles, facet labels, the total) or checking it (no full page load,
no active content in an article).

Every test module imports from here first: without Chromium or Playwright this skips
the module with a loud reason, except under CI (CI=true), where the ``served``
fixture fails every test instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from urllib.parse import parse_qs, urlencode, urlparse

import pytest

from tests.browser.conftest import _MISSING, IN_CI, Served, Tab
from tests.browser.conftest import ROOT as ROOT  # re-exported for the test modules

if _MISSING and not IN_CI:
    pytest.skip(f"!!! BROWSER TESTS NOT RUN: {_MISSING} !!!", allow_module_level=True)

try:
    from playwright.sync_api import Page
    from playwright.sync_api import expect as expect  # re-exported for the test modules
except ImportError:  # pragma: no cover - under CI, where the served fixture fails and says why
    Page = expect = None

# A terms facet's values are labelled checkboxes (label.facet-value > input + .label);
# the date facet's are drill-down links (a.facet-value > .label).
TAG_VALUES = "section[aria-labelledby=facet-tag] .facet-value"
CATEGORY_VALUES = "section[aria-labelledby=facet-category] .facet-value"
DATE_VALUES = "section.facet.date ul a.facet-value"

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 3}
NO_HSCROLL = "() => [document.scrollingElement.scrollWidth, window.innerWidth]"


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
    """The labels of the ticked facet values, in page order."""
    return page.locator(".facet-value:has(input:checked) .label").all_inner_texts()


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
    """The control of the value labelled ``label``: its checkbox (a terms facet; click it,
    or expect it to_be_checked) or its link (the date facet)."""
    value = page.locator(selector).filter(has=page.locator(".label", has_text=re.compile(f"^{re.escape(label)}$")))
    return value.locator("input[type=checkbox]").or_(value.and_(page.locator("a")))


def set_marker(page: Page) -> None:
    """A window property that only survives if no full page load happens."""
    page.evaluate("window.__marker = 'still-here'")


def assert_same_document(page: Page) -> None:
    assert page.evaluate("window.__marker") == "still-here", "a full page load happened: htmx should have swapped #main in place"


def api_total(tab: Tab, **query) -> int:
    resp = tab.page.request.get("/api/search?" + urlencode(query, doseq=True))
    assert resp.ok, resp.status
    return resp.json()["total"]


def _history(page: Page, action: Callable[[], object]) -> None:
    before = page.evaluate("window.__restores")
    action()
    page.wait_for_function("n => window.__restores > n", arg=before)


def _dates(page: Page) -> list[datetime]:
    return [datetime.fromisoformat(d) for d in page.locator(".hit time").evaluate_all("els => els.map(e => e.dateTime)")]


# -- articles: no active content ----------------------------------------------------

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
