#!/usr/bin/env python3
"""Screenshot one article page of a running app, whole, in headless Chromium.

For before/after pictures of a change to the article page (docs/boilerplate.md):
serve two indexes (one built by each version) and take the same article from each.

  python scripts/article_screenshot.py http://127.0.0.1:8812 ARTICLE_ID out.png [--open-details]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))

from screenshots import CHROMIUM_ARGS, wait_idle  # noqa: E402 - the README's screenshots drive Chromium this way


def main(argv: list[str] | None = None) -> int:
    """Save the page of ``article_id`` at 1280 pixels wide, full length."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("base_url")
    p.add_argument("article_id")
    p.add_argument("out", type=Path)
    p.add_argument("--open-details", action="store_true", help="open the folded 原文附加内容 first")
    p.add_argument("--chromium", default="/usr/bin/chromium")
    args = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    env = {**os.environ, "LANGUAGE": "zh_CN", "LANG": "zh_CN.UTF-8"}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, headless=True, args=CHROMIUM_ARGS, env=env)
        try:
            page = browser.new_context(base_url=args.base_url, locale="zh-CN", viewport={"width": 1280, "height": 900}).new_page()
            page.goto("/article/" + quote(args.article_id))
            if args.open_details and page.locator("details.boilerplate summary").count():
                page.locator("details.boilerplate summary").click()
            wait_idle(page)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out), full_page=True)
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
