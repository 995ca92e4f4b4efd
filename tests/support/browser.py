"""Headless Debian Chromium driven by Playwright, shared by every browser test."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
]
requires_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
)


@contextmanager
def chromium() -> Iterator:
    """Launch Chromium; on exit close it and the test's database connections.

    Playwright's sync API runs an event loop in the test's thread, so Django's async-safety check must be
    relaxed (the ORM calls stay synchronous), and under that loop the ORM opens a context-local connection
    that would block dropping the PostgreSQL test database unless it is closed here.
    """
    from django.db import connections
    from playwright.sync_api import sync_playwright

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
            connections.close_all()
