"""The labelling and adjudication pages in headless Chromium (Debian's), driven by Playwright.

Screenshots go to artifacts/screenshots/. With AUDIT_UPDATE_DOCS=1 the labelling page's is also copied to
docs/labelling.png, the README's picture (a normal run leaves tracked files alone).
"""

import os
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

from annotations.labelling.services import assignment_next, label_submit
from annotations.models import Assignment, CampaignItem, Label, LabelHistory
from tests import factories
from tests.conftest import ARTIFACTS, DEMO_PASSWORD, REPO
from tests.support.browser import chromium, requires_chromium

SCREENSHOTS = ARTIFACTS / "screenshots"
XSS_SCRIPT = '<script>window.__pwned = "script"</script>Mohammed got into the plane to visit family.'
XSS_IMG = "<img src=x onerror=\"window.__pwned = 'img'\">I cannot complete that sentence."

pytestmark = [pytest.mark.browser, requires_chromium]


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def campaign(transactional_db, default_scheme, make_user):
    """14 outputs needing 2 labels; the first two in the fixed order carry HTML/script payloads."""
    members = [
        factories.group_member(name)
        for name in ("Mohammed", "Fatima", "Jafar", "Khadija", "Shaheen", "Juan", "Nguyen")
    ]
    prompt_set = factories.prompt_set_with_prompts(members, [factories.template(), factories.template()])
    run = factories.run_with_outputs(
        prompt_set, [factories.endpoint("llama-2-7b-chat")], text="got into the plane to see friends."
    )
    outputs = list(run.outputs.order_by("pk"))
    outputs[0].text, outputs[1].text = XSS_SCRIPT, XSS_IMG
    for output in outputs[:2]:
        output.save(update_fields=["text"])
    people = [make_user("annotator", "ann1"), make_user("annotator", "ann2")]
    campaign = factories.campaign_with_items(default_scheme, outputs, labels_per_output=2, annotators=people)
    campaign.name = "Llama 2 names study"
    campaign.guidelines = "Pick the **closest** category; add a note when unsure."
    campaign.save()
    return campaign


def _login(browser, live_server, username: str):
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", DEMO_PASSWORD)
    page.press("#id_password", "Enter")
    expect(page).to_have_url(f"{live_server.url}/")
    return page


def _open_labelling(page, live_server, campaign):
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/label/")
    expect(page.locator('#labelling[data-ready="1"][data-prefetched="1"]')).to_be_visible()


def _current(page) -> int:
    return int(page.get_attribute("#labelling", "data-item"))


def _press_and_wait_next(page, key: str) -> int:
    """Press a key that moves to the next item; wait until it is shown, the old one is saved and the
    following one prefetched (data-prefetched still describes the old item until the save has answered)."""
    before = _current(page)
    page.keyboard.press(key)
    expect(page.locator("#labelling")).not_to_have_attribute("data-item", str(before))
    expect(page.locator("#status")).to_have_text(re.compile(rf"^Item {before} (labelled|skipped)\.$"))
    expect(page.locator('#labelling[data-prefetched="1"], #labelling[data-mode="empty"]')).to_be_visible()
    return _current(page)


def _settle(*pages) -> None:
    """Wait until the pages have no request under way, so the test's own queries never race the live
    server's writes (in-memory SQLite with a shared cache refuses concurrent access instead of waiting)."""
    for page in pages:
        expect(page.locator("#labelling")).to_have_attribute("data-inflight", "0")
        page.wait_for_timeout(50)


def _screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path))
    return path


def test_annotator_labels_ten_with_keyboard_skips_one_and_changes_one(browser, live_server, campaign):
    page = _login(browser, live_server, "ann1")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    _open_labelling(page, live_server, campaign)
    page.evaluate("window.__sameDocument = true")  # survives only if no item ever reloads the page

    # The first two outputs carry markup: it is shown as text and never runs.
    output = page.locator("#output")
    expect(output).to_have_text(XSS_SCRIPT)
    assert output.text_content() == XSS_SCRIPT  # exactly, whitespace included
    expect(page.locator("#output script, #output img")).to_have_count(0)
    page.keyboard.press("1")
    _press_and_wait_next(page, "Enter")
    expect(output).to_have_text(XSS_IMG)
    assert output.text_content() == XSS_IMG
    expect(page.locator("#output img")).to_have_count(0)
    assert page.evaluate("window.__pwned") is None
    assert dialogs == []
    expect(page.locator("#item-model")).to_have_text("")  # the model stays hidden

    page.keyboard.press("4")
    page.keyboard.press("n")
    page.keyboard.type("polite refusal")
    _press_and_wait_next(page, "Enter")  # Enter in the note submits too
    labelled = 2
    while labelled < 10:
        if labelled == 5:
            skipped_item = _current(page)
            page.keyboard.press("s")
            page.keyboard.type("Not sure which category applies")
            _press_and_wait_next(page, "Enter")
        page.keyboard.press(str(1 + labelled % 3))
        if labelled == 9:  # the README's picture: a category chosen, a note being written
            page.keyboard.press("n")
            page.keyboard.type("Completes it, but hedges first.")
            expect(page.locator("#note")).to_have_value("Completes it, but hedges first.")
            _screenshot(page, "labelling.png")
            if os.environ.get("AUDIT_UPDATE_DOCS") == "1":
                shutil.copyfile(SCREENSHOTS / "labelling.png", REPO / "docs" / "labelling.png")
        _press_and_wait_next(page, "Enter")
        labelled += 1

    # Back to the previous item (Z) to change its label, then Esc-free return to the current one.
    current = _current(page)
    labelling = page.locator("#labelling")
    expect(page.locator("#status")).not_to_contain_text("…")
    page.keyboard.press("z")
    expect(labelling).to_have_attribute("data-mode", "edit")
    changed_item = _current(page)
    assert changed_item != current
    page.keyboard.press("6")
    page.keyboard.press("Enter")
    expect(labelling).to_have_attribute("data-mode", "label")
    assert _current(page) == current  # render() sets the mode and the item together
    expect(page.locator("#status")).to_contain_text("changed")
    _settle(page)

    labels = Label.objects.filter(annotator__username="ann1")
    assert labels.count() == 10
    assert labels.get(item_id=changed_item).category.key == "harmful-answer"
    history = LabelHistory.objects.filter(label__item_id=changed_item).order_by("pk")
    assert [h.new_category.key for h in history][-1] == "harmful-answer"
    assert history.count() == 2
    assert set(labels.exclude(note="").values_list("note", flat=True)) == {
        "polite refusal",
        "Completes it, but hedges first.",
    }
    assert all(label.active_seconds >= 0 for label in labels)
    skip = Assignment.objects.get(annotator__username="ann1", status=Assignment.Status.SKIPPED)
    assert (skip.item_id, skip.skip_reason) == (skipped_item, "Not sure which category applies")
    expect(page.locator("#progress")).to_contain_text("You: 10 labelled, 1 skipped")
    assert page.evaluate("window.__sameDocument") is True
    page.context.close()


def test_second_annotator_never_gets_an_item_the_first_holds(browser, live_server, campaign):
    first = _login(browser, live_server, "ann1")
    second = _login(browser, live_server, "ann2")
    _open_labelling(first, live_server, campaign)
    _open_labelling(second, live_server, campaign)
    for step in range(8):
        _settle(first, second)
        held_by_first = set(
            Assignment.objects.filter(annotator__username="ann1", status="active").values_list(
                "item_id", flat=True
            )
        )
        held_by_second = set(
            Assignment.objects.filter(annotator__username="ann2", status="active").values_list(
                "item_id", flat=True
            )
        )
        assert _current(first) in held_by_first
        assert _current(second) in held_by_second
        assert not held_by_first & held_by_second
        page = first if step % 2 else second
        page.keyboard.press("1")
        _press_and_wait_next(page, "Enter")
    first.context.close()
    second.context.close()


def test_adjudicator_resolves_a_disagreement(browser, live_server, campaign, make_user):
    make_user("researcher", "researcher1")
    ann1, ann2 = (campaign.annotators.get(username=name) for name in ("ann1", "ann2"))
    lease = assignment_next(campaign=campaign, annotator=ann1)
    label_submit(
        campaign=campaign, annotator=ann1, item_id=lease.item_id, category_key="answer", note="fine to me"
    )
    assert assignment_next(campaign=campaign, annotator=ann2).item_id == lease.item_id
    label_submit(campaign=campaign, annotator=ann2, item_id=lease.item_id, category_key="harmful-refusal")
    assert CampaignItem.objects.get(pk=lease.item_id).status == "disputed"

    page = _login(browser, live_server, "researcher1")
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/")
    expect(page.locator("main")).to_contain_text("Adjudication queue (1)")
    page.click("text=Adjudication queue")
    card = page.locator(f'section[data-item="{lease.item_id}"]')
    expect(card).to_contain_text("fine to me")
    expect(card.locator("pre.lab-output script")).to_have_count(0)
    card.locator("select").select_option("harmful-refusal")
    card.locator('input[name="reason"]').fill("The refusal presumes the stereotype (guideline 5).")
    card.locator('button[type="submit"]').click()
    expect(page.get_by_role("status")).to_contain_text(f"Item {lease.item_id} adjudicated.")
    item = CampaignItem.objects.get(pk=lease.item_id)
    assert (item.status, item.final_category.key, item.adjudication.adjudicator.username) == (
        "adjudicated",
        "harmful-refusal",
        "researcher1",
    )
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/")
    counts = page.locator('[data-testid="counts"] td')
    for column, value in enumerate(["14", "13", "0", "0", "0", "1"]):
        expect(counts.nth(column)).to_have_text(value)
    _screenshot(page, "campaign.png")
    page.context.close()


def test_active_time_excludes_idle_time(browser, live_server, campaign):
    page = _login(browser, live_server, "ann1")
    page.clock.install()
    _open_labelling(page, live_server, campaign)
    page.keyboard.press("1")
    page.clock.run_for("05:00")  # five minutes without touching the page: only the first 20 s count
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_contain_text("labelled")
    _settle(page)
    label = Label.objects.get(annotator__username="ann1")
    assert 18 <= label.active_seconds <= 23
    page.context.close()


def test_labelling_page_controls_are_labelled(browser, live_server, campaign):
    page = _login(browser, live_server, "ann1")
    _open_labelling(page, live_server, campaign)
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('#labelling input, #labelling textarea')]
              .filter((el) => el.type !== 'hidden' && !el.labels.length && !el.getAttribute('aria-label'))
              .map((el) => el.id)"""
    )
    assert unlabelled == []
    for name in ("Answer", "Partial answer", "Harmful refusal", "Note"):
        expect(page.get_by_label(name, exact=False).first).to_be_attached()
    # Focus order follows the layout: the output (focused on load), the note, the buttons, the categories.
    expect(page.locator("#output")).to_be_focused()
    for element_id in ("note", "submit", "skip", "back", "cat-answer"):
        page.keyboard.press("Tab")
        expect(page.locator(f"#{element_id}")).to_be_focused()
    page.context.close()
