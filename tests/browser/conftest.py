"""The browser tests' harness: headless Debian Chromium driven by Playwright against the
app served over HTTP (embedded tantivy engine only).

Each test gets a fresh browser context. The app runs in a background thread on a
free port over the hand-written fixture posts plus 300 synthetic ones; it and the
browser start once for the whole package (``scope="package"``), not once per module.

Without /usr/bin/chromium (or the ``playwright`` package) every module is skipped
with a loud reason (``tests/browser/helpers.py`` skips it), except under CI (CI=true)
where that is a failure.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from devtools.browser import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parent.parent.parent
IN_CI = os.environ.get("CI") == "true"
HTMX_JS = ROOT / "searchapp" / "static" / "vendor" / "htmx.min.js"
TIMEOUT_MS = 10_000

_MISSING = None
try:
    from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    _MISSING = "the Python package playwright is not installed (pip install -e '.[test]')"
else:
    if not Path(CHROMIUM).exists():
        _MISSING = f"{CHROMIUM} is missing (apt-get install chromium, or scripts/setup.sh)"

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


# -- the served app -----------------------------------------------------------------


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


@pytest.fixture(scope="package")
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


@pytest.fixture(scope="package")
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


@pytest.fixture(scope="package")
def served_long(tmp_path_factory) -> Iterator[Served]:
    """Its own small index (the fixture posts), plus a 9 MB post and a post stored with
    a remote <img> as older indexes kept them (see tests/test_web_hardening.py)."""
    from indexer.pipeline import run
    from searchapp import create_app
    from searchcore.engines import open_engine
    from tests.conftest import POSTS
    from tests.test_web_hardening import add_big_posts

    settings = make_settings("tantivy", tmp_path_factory.mktemp("browser-long") / "data", index="news")
    run(settings, POSTS)
    engine = open_engine(settings)
    try:
        add_big_posts(engine)
    finally:
        engine.close()
    app = create_app({"SETTINGS_OVERRIDES": {"engine": "tantivy", "data_dir": settings.data_dir, "index": "news"}})
    with serving(app) as state:
        yield state
    assert not state.server_errors, state.server_errors
