"""The browser tests: headless Debian Chromium driven by Playwright against the served app."""
