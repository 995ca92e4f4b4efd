"""The run page's progress bar and failures update live, without reloading (headless Chromium)."""

import threading

import pytest
from django.db import connection

from inference.services.runs import run_generate_in_process, run_start
from tests import factories
from tests.conftest import DEMO_PASSWORD
from tests.support.browser import chromium, requires_chromium
from tests.support.fake_openai import server_error, slow

pytestmark = [pytest.mark.browser, requires_chromium]


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
    page.goto(f"{live_server.url}/inference/runs/{run.pk}/")
    assert page.text_content('[data-field="done"]') == "0"
    assert "No failures." in page.text_content("#run-failures")
    page.evaluate("window.__sameDocument = true")

    def generate():
        try:
            run_generate_in_process(run=run)
        finally:
            connection.close()

    worker = threading.Thread(target=generate)
    worker.start()
    try:
        page.wait_for_function(
            "document.querySelector('[data-field=\"done\"]').textContent !== '0' && "
            "document.querySelector('[data-field=\"done\"]').textContent !== '8'",
            timeout=20_000,
        )  # a moment in the middle of the run
        assert page.text_content('[data-field="status_display"]') == "Running"
        page.wait_for_function(
            "document.querySelector('[data-field=\"done\"]').textContent === '8'", timeout=30_000
        )
    finally:
        worker.join(timeout=60)
    page.wait_for_function(
        "document.querySelector('[data-field=\"status_display\"]').textContent === 'Finished with failures'",
        timeout=10_000,
    )
    assert page.evaluate("window.__sameDocument") is True  # never reloaded
    assert page.text_content('[data-field="failed"]') == "4"
    assert page.text_content('[data-field="pending"]') == "0"
    assert page.get_attribute("[role=progressbar]", "aria-valuenow") == "12"
    failures = page.text_content("#run-failures")
    assert "HTTP 500" in failures
    assert "<b>engine</b> crashed" in failures  # shown as text, not markup
    assert page.locator("#run-failures b").count() == 0
    assert int(page.get_attribute("#run-progress", "data-polls")) >= 2
    page.goto("about:blank")
