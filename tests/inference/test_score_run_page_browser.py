"""An admin starts a string-match score run in the browser and its page updates live (headless Chromium)."""

import threading
import time

import pytest
from django.db import connection
from playwright.sync_api import expect

from inference.models import Scorer, ScoreRun
from inference.services.scoring import score_run_in_process, scorer_create
from tests import factories
from tests.conftest import DEMO_PASSWORD
from tests.support.browser import chromium, requires_chromium

pytestmark = [pytest.mark.browser, requires_chromium]

XSS = "<script>window.__pwned=1</script>"
REFUSAL = "I'm sorry, but I cannot complete that sentence."


def _field(page, name: str):
    return page.locator(f'[data-field="{name}"]')


@pytest.fixture
def page():
    """A headless Chromium page."""
    with chromium() as browser:
        yield browser.new_context().new_page()


def test_admin_starts_a_string_match_run_and_its_progress_updates_without_reloading(
    page, live_server, prompt_set, default_scheme, admin_user_role
):
    run = factories.run_with_outputs(prompt_set, [factories.endpoint("llama")], text=XSS + " visit family.")
    run.outputs.filter(prompt__member__value="Mohammed").update(text=REFUSAL)
    scorer = scorer_create(
        name="xstest",
        kind=Scorer.Kind.STRING_MATCH,
        scheme=default_scheme,
        config={"preset": "xstest", "refusal_category": "refusal-to-answer", "otherwise_category": "answer"},
    )

    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", admin_user_role.username)
    page.fill("#id_password", DEMO_PASSWORD)
    page.press("#id_password", "Enter")
    expect(page).to_have_url(f"{live_server.url}/")  # logged in before leaving the page
    page.get_by_role("link", name="Scorers").click()
    page.get_by_role("link", name="Start a score run").click()
    page.select_option("#id_scorer", str(scorer.pk))
    page.select_option("#id_generation_run", str(run.pk))
    page.fill("#id_chunk_size", "1")  # one output per chunk, so the run has a middle to watch
    page.get_by_role("button", name="Start the score run").click()

    expect(page.locator(".messages")).to_contain_text("python manage.py score --score-run")
    score_run = ScoreRun.objects.get()
    expect(page).to_have_url(f"{live_server.url}/inference/score-runs/{score_run.pk}/")
    expect(_field(page, "pending")).to_have_text("6")
    expect(_field(page, "done")).to_have_text("0")
    page.evaluate("window.__sameDocument = true")

    def score():
        try:
            score_run_in_process(run=score_run, on_progress=lambda done, failed: time.sleep(0.5))
        finally:
            connection.close()

    worker = threading.Thread(target=score)
    worker.start()
    try:
        middle = page.wait_for_function(
            """() => {
                const text = (name) => document.querySelector(`[data-field="${name}"]`).textContent;
                return !["0", "6"].includes(text("done")) && text("status_display");
            }""",
            timeout=20_000,
        )
        assert middle.json_value() == "Running"
        expect(_field(page, "done")).to_have_text("6", timeout=30_000)
    finally:
        worker.join(timeout=60)
    expect(_field(page, "status_display")).to_have_text("Completed")
    assert page.evaluate("window.__sameDocument") is True  # never reloaded
    expect(_field(page, "pending")).to_have_text("0")
    expect(_field(page, "unparseable")).to_have_text("0")
    expect(page.locator("[role=progressbar]")).to_have_attribute("aria-valuenow", "6")
    assert int(page.get_attribute("#run-progress", "data-polls")) >= 2

    page.reload()
    latest = page.locator("section", has=page.get_by_role("heading", name="Latest scores"))
    expect(latest).to_contain_text(XSS)  # model output shown as text, never run
    assert page.evaluate("window.__pwned") is None
    categories = page.locator("section", has=page.get_by_role("heading", name="Scores per category"))
    expect(categories).to_contain_text("refusal-to-answer")
    page.goto("about:blank")
