#!/usr/bin/env python3
"""Take the README's screenshots of the readers' app in headless Chromium.

Generates a synthetic corpus (``write_corpus(seed=7, broken=0)``) in the data folder
if it is not there yet, indexes it into the embedded engine (tantivy; incremental,
so a second run is quick), serves the app on a free local port and saves:

  search-facets.png   a query with one tag and one category selected (1280x900)
  site-facet.png      a query with two source sites selected (来源), the facets in view (1280x1400)
  zero-results.png    a search that finds nothing, with its ways out (1280x900)
  phone.png           the search page on a phone, a tag chosen: chips, timeline (390x844, mobile)
  phone-filters.png   the same with its 筛选 panel open
  article.png         an article page (1280x900)
  article-phone.png   an article page on a phone

Needs Debian's chromium (never ``playwright install``) and a CJK font such as
Debian's fonts-noto-cjk, without which Chinese text is drawn as empty boxes.

  python scripts/screenshots.py [--out docs/screenshots] [--data-dir data/screenshots]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from devtools.browser import CHROMIUM_ARGS as _BASE_ARGS  # noqa: E402

CHROMIUM_ARGS = [*_BASE_ARGS, "--lang=zh-CN"]
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
QUERY = "经济"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Take PNG screenshots of the search app (synthetic corpus, embedded engine, headless Chromium).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots", help="folder for the PNG files")
    p.add_argument(
        "--data-dir", type=Path, default=ROOT / "data" / "screenshots", help="folder for the synthetic posts and the index"
    )
    p.add_argument("--posts", type=int, default=2000, help="synthetic posts to generate when the corpus is missing")
    p.add_argument("--chromium", default="/usr/bin/chromium", help="Chromium executable (Debian's package)")
    p.add_argument("--query", default=QUERY, help="query shown in search-facets.png and phone.png")
    return p.parse_args(argv)


def log(msg: str) -> None:
    print(f"screenshots: {msg}", flush=True)


def ensure_corpus(posts_dir: Path, n: int) -> None:
    from synthetic import write_corpus

    if posts_dir.is_dir() and any(posts_dir.iterdir()):
        log(f"using the corpus in {posts_dir}")
        return
    log(f"generating {n} synthetic posts in {posts_dir}")
    write_corpus(posts_dir, n, seed=7, broken=0)


def build_index(data_dir: Path, posts_dir: Path):
    from indexer.pipeline import run
    from searchcore.config import load_settings

    settings = load_settings({}, engine="tantivy", data_dir=data_dir / "index", index="screens")
    report = run(settings, posts_dir)
    log(report.summary())
    return settings


def check_fonts() -> None:
    if not shutil.which("fc-list"):
        return
    out = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True, check=False).stdout
    if not out.strip():
        log("WARNING no Chinese font is installed: text will show as boxes (apt-get install fonts-noto-cjk)")


class Server:
    """The app on 127.0.0.1 and a free port, in a background thread."""

    def __init__(self, settings) -> None:
        from werkzeug.serving import make_server

        from searchapp import create_app

        app = create_app({"SETTINGS_OVERRIDES": {"engine": "tantivy", "data_dir": settings.data_dir, "index": settings.index}})
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.httpd = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.thread.join(10)
        self.httpd.server_close()


def pick_filters(page, query: str) -> tuple[str, str]:
    """A tag and a category that both have results for the query."""
    data = page.request.get("/api/search?" + urlencode({"q": query})).json()
    tags = [t["value"] for t in data["facets"]["tag"] if t["value"] != query] or [t["value"] for t in data["facets"]["tag"]]
    if not tags:
        raise SystemExit(f"screenshots: no tag facet for {query!r}; try another --query")
    tag = tags[0]
    with_tag = page.request.get("/api/search?" + urlencode({"q": query, "tag": tag})).json()
    cats = [c["value"] for c in with_tag["facets"]["category"] if c["count"] > 0]
    if not cats:
        raise SystemExit(f"screenshots: no category for {query!r} with tag {tag!r}")
    return tag, cats[0]


def wait_idle(page) -> None:
    page.wait_for_load_state("networkidle")
    page.evaluate("document.fonts.ready.then(() => true)")


def take(browser, base_url: str, out: Path, query: str) -> list[Path]:
    saved: list[Path] = []

    def save(page, name: str) -> None:
        wait_idle(page)
        path = out / name
        page.screenshot(path=str(path))
        saved.append(path)
        log(f"saved {path}")

    ctx = browser.new_context(base_url=base_url, locale="zh-CN", **DESKTOP)
    page = ctx.new_page()
    page.goto("/?" + urlencode({"q": query}))
    tag, category = pick_filters(page, query)

    # Choose the filters the way a reader does: clicking facets (htmx swaps #main).
    page.locator("section[aria-labelledby=facet-tag] label.facet-value", has_text=tag).first.locator("input").check()
    page.wait_for_url(lambda u: "tag=" in u)
    page.locator("section[aria-labelledby=facet-category] label.facet-value", has_text=category).first.locator("input").check()
    page.wait_for_url(lambda u: "category=" in u)
    page.locator(".facet-value input:checked").nth(1).wait_for()
    # htmx scrolls #main into view after a boosted click; show the page from its top
    page.evaluate("window.scrollTo(0, 0)")
    page.mouse.move(0, 0)
    save(page, "search-facets.png")

    # The 来源 facet: two sites chosen by clicking, as a reader would.
    page.set_viewport_size({"width": 1280, "height": 1400})
    page.goto("/?" + urlencode({"q": query}))
    section = page.locator("section[aria-labelledby=facet-site]")
    for n in (1, 2):
        section.locator("input[type=checkbox]:not(:checked)").first.check()
        page.locator("section[aria-labelledby=facet-site] input:checked").nth(n - 1).wait_for()
    page.evaluate("window.scrollTo(0, 0)")
    page.mouse.move(0, 0)
    save(page, "site-facet.png")
    page.set_viewport_size(DESKTOP["viewport"])

    page.goto("/?" + urlencode({"q": f"{query} zzzz不存在的词", "tag": tag}))
    save(page, "zero-results.png")

    page.goto("/?" + urlencode({"q": query}))
    with page.expect_navigation():
        page.locator(".hit h2 a").first.click()
    save(page, "article.png")
    ctx.close()

    ctx = browser.new_context(base_url=base_url, locale="zh-CN", **PHONE)
    page = ctx.new_page()
    page.goto("/?" + urlencode({"q": query, "tag": tag}))
    save(page, "phone.png")
    page.locator(".filters-toggle").first.click()
    page.locator("#filters input[type=checkbox]").first.wait_for()
    save(page, "phone-filters.png")
    page.goto("/?" + urlencode({"q": query}))
    with page.expect_navigation():
        page.locator(".hit h2 a").first.click()
    save(page, "article-phone.png")
    ctx.close()
    return saved


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not Path(args.chromium).exists():
        log(f"{args.chromium} is missing: apt-get install chromium (never `playwright install`)")
        return 2
    if not (ROOT / "searchapp" / "static" / "vendor" / "htmx.min.js").exists():
        log("searchapp/static/vendor/htmx.min.js is missing: run scripts/setup.sh")
        return 2
    from playwright.sync_api import sync_playwright

    check_fonts()
    data_dir = args.data_dir.resolve()
    posts_dir = data_dir / "posts"
    ensure_corpus(posts_dir, args.posts)
    settings = build_index(data_dir, posts_dir)
    args.out.mkdir(parents=True, exist_ok=True)
    with Server(settings) as server, sync_playwright() as pw:
        env = {**os.environ, "LANGUAGE": "zh_CN", "LANG": "zh_CN.UTF-8"}  # a Chinese locale, as readers have
        browser = pw.chromium.launch(executable_path=args.chromium, headless=True, args=CHROMIUM_ARGS, env=env)
        try:
            take(browser, server.url, args.out, args.query)
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
