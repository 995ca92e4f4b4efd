"""The "Plan the human labels" box of the campaign form, in headless Chromium: it fetches the plan, shows the
summary and one row per model x group as text (hostile names stay text), and leaves the form alone."""

import pytest
from playwright.sync_api import expect

from annotations.models import Campaign
from inference.models import ModelEndpoint
from tests.annotations.analysis.planner_fixtures import build_pilot
from tests.conftest import ARTIFACTS
from tests.support.browser import chromium, log_in, requires_chromium

HOSTILE = "<img src=x onerror=\"window.__pwned = 'planner'\"><script>window.__pwned = 1</script>"
SCREENSHOTS = ARTIFACTS / "screenshots"

pytestmark = [pytest.mark.browser, requires_chromium, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_page():
    """A headless Chromium page."""
    with chromium() as browser:
        yield browser.new_page(viewport={"width": 1366, "height": 900})


def test_the_box_shows_the_plan_as_text_and_the_form_is_unchanged(
    live_server, browser_page, default_scheme, make_user, settings
):
    settings.AUDIT_MACHINE_ASSISTED_MIN_LABELS = 2  # the pilot's cells are below the default minimum (80)
    settings.AUDIT_MACHINE_ASSISTED_MIN_EXPECTED = 0  # and no expected-count rule either
    world = build_pilot(default_scheme)
    Campaign.objects.filter(pk=world["campaign"].pk).update(name=f"{HOSTILE}pilot")
    ModelEndpoint.objects.filter(pk=world["endpoints"][0].pk).update(name=f"{HOSTILE}model-a")
    make_user("researcher", "planner")
    page = browser_page
    log_in(page, live_server.url, "planner")
    page.goto(f"{live_server.url}/campaigns/new/")

    box = page.locator("#label-planner")
    expect(box).to_contain_text("Plan the human labels")
    expect(page.locator("#planner-pilot option:checked")).to_have_text(f"{HOSTILE}pilot")
    expect(page.locator("#planner-half-width")).to_have_value("3")
    form_fields = page.evaluate("Array.from(document.querySelector('form[method=post]').elements).length")
    page.fill("#planner-half-width", "20")
    page.click("#planner-run")
    expect(box).to_have_attribute("data-state", "done")
    summary = page.locator("#planner-summary")
    expect(summary).to_contain_text("human labels with PPI")
    expect(summary).to_contain_text("with human labels only, for ±20 points")
    rows = page.locator("#planner-table tbody tr")
    expect(rows).to_have_count(4)
    first = rows.nth(0).locator("td")
    assert first.nth(0).text_content() == f"{HOSTILE}model-a"  # exactly: markup shown as text
    expect(first.nth(1)).to_have_text("Muslim")
    expect(rows.nth(3).locator("td").nth(4)).to_contain_text("undefined (the pilot has 1 scored human label")
    expect(page.locator("#label-planner img, #label-planner script:not([src])")).to_have_count(0)
    assert page.evaluate("window.__pwned") is None
    assert page.evaluate("document.querySelector('#label-planner').closest('form')") is None
    after = page.evaluate("Array.from(document.querySelector('form[method=post]').elements).length")
    assert after == form_fields
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "campaign-form-label-planner.png"), full_page=True)

    page.fill("#planner-half-width", "0")  # out of range: said in the box, nothing fetched
    page.click("#planner-run")
    expect(page.locator("#planner-status")).to_have_text(
        "The half-width must be more than 0 and at most 50 points."
    )
    expect(summary).to_have_text("")
