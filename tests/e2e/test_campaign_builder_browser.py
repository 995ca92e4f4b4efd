"""The new-campaign form as a builder, in headless Chromium: filter a checkbox list, select all, the live
count follows, a gold item is chosen through the search with the keyboard (hostile text stays text), and
the saved campaign has the items the count showed and the gold item."""

import pytest
from playwright.sync_api import expect

from annotations.models import Campaign
from inference.models import Output
from tests import factories
from tests.annotations.labelling.sampling_fixtures import build_world
from tests.conftest import ARTIFACTS
from tests.support.browser import chromium, log_in, requires_chromium

HOSTILE = "<img src=x onerror=\"window.__pwned = 'gold'\"><script>window.__pwned = 1</script>"
SCREENSHOTS = ARTIFACTS / "screenshots"

pytestmark = [pytest.mark.browser, requires_chromium, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_page():
    """A headless Chromium page."""
    with chromium() as browser:
        yield browser.new_page(viewport={"width": 1366, "height": 900})


def test_build_a_campaign_with_the_keyboard(live_server, browser_page, default_scheme, make_user):
    world = build_world()  # 2 models (m7, m13) x 2 groups x 2 templates x 3 samples = 24 done outputs
    world["run"].name = "alpha-run"
    world["run"].save(update_fields=["name"])
    other = factories.run_with_outputs(
        factories.prompt_set_with_prompts([factories.group_member()], [factories.template()]),
        [factories.endpoint("other-model")],
        text="a needle in another run",
    )
    other.name = "beta-run"
    other.save(update_fields=["name"])
    needle = next(o for o in world["outputs"] if o.endpoint.name == "m7")
    Output.objects.filter(pk=needle.pk).update(text=f"{HOSTILE} the needle answer")
    make_user("researcher", "builder")
    page = browser_page
    log_in(page, live_server.url, "builder")
    page.goto(f"{live_server.url}/campaigns/new/")

    status = page.locator("#selection-count-status")
    expect(status).to_have_text("Choose at least one run, model, group or template.")
    runs = page.locator("[data-choice-list=runs]")
    page.get_by_label("Filter runs").fill("alpha")
    expect(runs.locator("li:visible")).to_have_count(1)
    page.get_by_role("button", name="Select all visible runs").click()
    expect(page.get_by_label("alpha-run")).to_be_checked()
    expect(page.get_by_label("beta-run", exact=True)).not_to_be_checked()  # filtered out: left alone
    expect(status).to_have_text("24 outputs selected (2 models x 2 groups).")
    expect(runs.locator("[data-choice-summary]")).to_have_text("(1 of 2 selected)")
    page.get_by_label("Filter models").fill("m7")
    page.get_by_role("button", name="Select all visible models").click()
    expect(status).to_have_text("12 outputs selected (1 model x 2 groups).")
    expect(page.locator("#selection-count-table tbody tr")).to_have_count(3)  # 2 groups and the totals
    expect(page.locator("#selection-count-warnings li")).to_have_count(0)

    page.select_option("#gold-category", "refusal-to-answer")
    page.focus("#gold-search")
    page.keyboard.type("needle")
    page.keyboard.press("Enter")  # searches; never submits the form
    results = page.locator("#gold-results li")
    expect(results).to_have_count(1)  # the other run is not selected
    expect(results.locator(".gold-text")).to_have_text(f"{HOSTILE} the needle answer")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name=f"Add output {needle.pk} as gold")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("textarea[name=gold]")).to_have_value(f"{needle.pk}, refusal-to-answer\n")
    chosen = page.locator("#gold-chosen li")
    expect(chosen).to_have_count(1)
    expect(chosen).to_contain_text(f"#{needle.pk} Refusal to answer (refusal-to-answer)")
    expect(page.locator("#gold-results button")).to_have_text("Added")
    expect(page.locator("#campaign-builder img, #campaign-builder script:not([src])")).to_have_count(0)
    assert page.evaluate("window.__pwned") is None
    assert Campaign.objects.count() == 0
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "campaign-builder.png"), full_page=True)

    page.fill("input[name=name]", "Built")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("h1")).to_contain_text("Built")
    campaign = Campaign.objects.get(name="Built")
    items = campaign.items.select_related("output", "gold_category")
    assert items.count() == 12
    assert {item.output.endpoint_id for item in items} == {needle.endpoint_id}
    assert [(i.output_id, i.gold_category.key) for i in items if i.gold_category] == [
        (needle.pk, "refusal-to-answer")
    ]


def test_removing_a_gold_item_and_typing_lines_keep_the_field_in_step(
    live_server, browser_page, default_scheme, make_user
):
    world = build_world()
    first, second = world["outputs"][:2]
    make_user("researcher", "builder")
    page = browser_page
    log_in(page, live_server.url, "builder")
    page.goto(f"{live_server.url}/campaigns/new/")
    gold = page.locator("textarea[name=gold]")
    gold.fill(f"{first.pk}, answer\n{second.pk}, refusal-to-answer\n")
    chosen = page.locator("#gold-chosen li")
    expect(chosen).to_have_count(2)
    page.get_by_role("button", name=f"Remove gold output {first.pk}").click()
    expect(gold).to_have_value(f"{second.pk}, refusal-to-answer\n")
    expect(page.get_by_role("button", name=f"Remove gold output {second.pk}")).to_be_focused()
    expect(page.locator("#gold-search-status")).to_have_text(
        f"Output {first.pk} removed from the gold items."
    )
