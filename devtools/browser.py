"""How our tools start Debian's Chromium: one list of flags for the browser tests,
the screenshots and the compose check (PITFALLS: as root, without a sandbox, and
with every background connection off, since this machine's closed network refuses
them, many at a time)."""

from __future__ import annotations

import os

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
