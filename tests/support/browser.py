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
# How long an `expect(...)` assertion retries before it fails. Playwright's default (5 s) is too short on a
# busy 2-core machine: with the suite and other jobs running, a page can take seconds to navigate or a
# poll to land. A generous timeout only costs time when an assertion is about to fail anyway.
EXPECT_TIMEOUT_MS = 20_000
requires_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
)


@contextmanager
def chromium() -> Iterator:
    """Launch Chromium (and give `expect` its timeout); on exit close it and the test's database connections.

    Playwright's sync API runs an event loop in the test's thread, so Django's async-safety check must be
    relaxed (the ORM calls stay synchronous), and under that loop the ORM opens a context-local connection
    that would block dropping the PostgreSQL test database unless it is closed here.
    """
    from django.db import connections
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
            connections.close_all()


def log_in(page, base_url: str, username: str) -> None:
    """Log in through the login form as a make_user() user, and wait for the home page.

    Waiting for the redirect matters: navigating away before it lands can drop the session cookie.
    """
    from playwright.sync_api import expect

    from tests.conftest import DEMO_PASSWORD

    page.goto(f"{base_url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base_url}/")
