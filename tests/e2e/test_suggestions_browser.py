"""The scorer's suggestion on the labelling page, in headless Chromium: shown as text only when the campaign
turns suggestions on, and never choosing a category for the annotator."""

import pytest
from playwright.sync_api import expect

from annotations.models import Campaign, Label
from inference.models import Scorer
from tests import factories
from tests.conftest import ARTIFACTS, DEMO_PASSWORD
from tests.support.browser import chromium, requires_chromium
from tests.support.scores import score, scorer

# A category name is text a researcher wrote: markup in it is shown, never run.
HOSTILE_NAME = (
    "<img src=x onerror=\"window.__pwned = 'suggestion'\"><script>window.__pwned = 1</script>Refusal"
)

SCREENSHOTS = ARTIFACTS / "screenshots"

pytestmark = [pytest.mark.browser, requires_chromium]


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def campaigns(transactional_db, default_scheme, make_user):
    """Two campaigns over the same 4 outputs, suggestions on and off; the first output is scored."""
    members = [factories.group_member("Mohammed"), factories.group_member("John", group="White")]
    prompt_set = factories.prompt_set_with_prompts(members, [factories.template(), factories.template()])
    run = factories.run_with_outputs(prompt_set, [factories.endpoint("llama-2-7b-chat")])
    outputs = list(run.outputs.order_by("pk"))
    default_scheme.categories.filter(key="refusal-to-answer").update(name=HOSTILE_NAME)
    judge = scorer(default_scheme, kind=Scorer.Kind.JUDGE, name="judge", version="v2")
    score(judge, outputs[0], category_key="refusal-to-answer", probabilities={"refusal-to-answer": 0.82})
    people = [make_user("annotator", "ann1")]
    shown = factories.campaign_with_items(default_scheme, outputs, annotators=people)
    Campaign.objects.filter(pk=shown.pk).update(show_suggestions=True, suggestion_scorer=judge)
    blind = factories.campaign_with_items(default_scheme, outputs, annotators=people)
    Campaign.objects.filter(pk=blind.pk).update(suggestion_scorer=judge)  # chosen, but not shown
    return shown, blind


def _labelling_page(browser, live_server, campaign):
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "ann1")
    page.fill("#id_password", DEMO_PASSWORD)
    page.press("#id_password", "Enter")
    expect(page).to_have_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/label/")
    expect(page.locator('#labelling[data-ready="1"][data-prefetched="1"]')).to_be_visible()
    return page


def test_suggestion_is_a_hint_in_text_that_chooses_nothing(browser, live_server, campaigns):
    shown, blind = campaigns
    page = _labelling_page(browser, live_server, shown)
    hint = page.locator("#suggestion")
    expect(hint).to_be_visible()
    expect(hint).to_contain_text("Machine suggestion")
    text = f"Scorer suggests: {HOSTILE_NAME} (p 0.82)"
    expect(page.locator("#suggestion-text")).to_have_text(text)
    assert page.locator("#suggestion-text").text_content() == text  # exactly: markup shown as text
    expect(page.locator("#suggestion img, #suggestion script")).to_have_count(0)
    assert page.evaluate("window.__pwned") is None
    expect(page.locator('input[name="category"]:checked')).to_have_count(0)  # nothing preselected
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "labelling-suggestion.png"))
    page.keyboard.press("Enter")  # so Enter alone submits nothing
    expect(page.locator("#status")).to_contain_text("Choose a category first")

    # Keyboard-first labelling is unchanged: a key chooses, Enter submits; the next output has no score.
    first = page.get_attribute("#labelling", "data-item")
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    expect(page.locator("#labelling")).not_to_have_attribute("data-item", first)
    expect(hint).to_be_hidden()
    expect(page.locator('input[name="category"]:checked')).to_have_count(0)
    expect(page.locator("#status")).to_have_text(f"Item {first} labelled.")
    expect(page.locator("#labelling")).to_have_attribute("data-inflight", "0")
    assert Label.objects.get(item_id=int(first)).category.key == "answer"

    page.keyboard.press("z")  # an earlier label being changed shows no suggestion
    expect(page.locator("#labelling")).to_have_attribute("data-mode", "edit")
    expect(hint).to_be_hidden()
    page.context.close()

    page = _labelling_page(browser, live_server, blind)
    expect(page.locator("#suggestion")).to_have_count(0)
    expect(page.locator("#labelling")).not_to_contain_text("Scorer suggests")
    expect(page.locator("#labelling")).not_to_contain_text("Machine suggestion")
    expect(page.locator('input[name="category"]:checked')).to_have_count(0)
    page.context.close()
