"""The run page's progress bar and failures update live, without reloading (headless Chromium)."""

import threading

import pytest
from django.db import connection
from playwright.sync_api import expect

from inference.services.runs import run_generate_in_process, run_start
from tests import factories
from tests.conftest import DEMO_PASSWORD
from tests.support.browser import chromium, requires_chromium
from tests.support.fake_openai import server_error, slow

pytestmark = [pytest.mark.browser, requires_chromium]


def _field(page, name: str):
    return page.locator(f'[data-field="{name}"]')


@pytest.fixture
def page():
    """A headless Chromium page."""
    with chromium() as browser:
        yield browser.new_context().new_page()


def test_progress_updates_without_reloading(  # noqa: PLR0917 (pytest fixtures)
    page, live_server, fake_server, prompt_set, researcher, fast_backoff
):
    fake_server.set_rule(
        lambda info: server_error("<b>engine</b> crashed") if "Maria" in info.prompt else slow(0.4)
    )
    endpoint = factories.endpoint(
        name="fake", base_urls=[fake_server.base_url], served="fake-model", concurrency_limit=2
    )
    run = run_start(
        prompt_set=prompt_set, endpoints=[endpoint], samples_per_prompt=2, max_attempts=1, dispatch=False
    )

    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", researcher.username)
    page.fill("#id_password", DEMO_PASSWORD)
    page.press("#id_password", "Enter")
    expect(page).to_have_url(f"{live_server.url}/")  # logged in before leaving the page
    page.goto(f"{live_server.url}/inference/runs/{run.pk}/")
    failures = page.locator("#run-failures")
    expect(_field(page, "done")).to_have_text("0")
    expect(failures).to_contain_text("No failures.")
    page.evaluate("window.__sameDocument = true")

    def generate():
        try:
            run_generate_in_process(run=run)
        finally:
            connection.close()

    worker = threading.Thread(target=generate)
    worker.start()
    try:
        # A moment in the middle of the run; the status is read in the same frame as the count, since the
        # next poll may already show the run finished.
        middle = page.wait_for_function(
            """() => {
                const text = (name) => document.querySelector(`[data-field="${name}"]`).textContent;
                return !["0", "8"].includes(text("done")) && text("status_display");
            }""",
            timeout=20_000,
        )
        assert middle.json_value() == "Running"
        expect(_field(page, "done")).to_have_text("8", timeout=30_000)
    finally:
        worker.join(timeout=60)
    expect(_field(page, "status_display")).to_have_text("Finished with failures")
    assert page.evaluate("window.__sameDocument") is True  # never reloaded
    expect(_field(page, "failed")).to_have_text("4")
    expect(_field(page, "pending")).to_have_text("0")
    expect(page.locator("[role=progressbar]")).to_have_attribute("aria-valuenow", "12")
    expect(failures).to_contain_text("HTTP 500")
    expect(failures).to_contain_text("<b>engine</b> crashed")  # shown as text, not markup
    expect(failures.locator("b")).to_have_count(0)
    assert int(page.get_attribute("#run-progress", "data-polls")) >= 2
    page.goto("about:blank")
