"""The prompt library in headless Chromium (Debian's), driven by Playwright: upload with preview and
confirmation, a rejected upload, building the starter prompt set and searching it."""

from pathlib import Path

import pytest

from annotations.models import GroupMember, PromptSet, PromptTemplate
from tests.conftest import DEMO_PASSWORD, REPO
from tests.support.browser import chromium, requires_chromium

STARTER = REPO / "annotations" / "starter"

pytestmark = [pytest.mark.browser, requires_chromium]


@pytest.fixture
def page(live_server, transactional_db, make_user):
    """A logged-in admin's browser page."""
    make_user("admin", "libadmin")
    with chromium() as browser:
        tab = browser.new_page()
        tab.goto(f"{live_server.url}/login/")
        tab.get_by_label("Username").fill("libadmin")
        tab.get_by_label("Password").fill(DEMO_PASSWORD)
        tab.get_by_role("button", name="Log in").click()
        tab.wait_for_url(f"{live_server.url}/")
        yield tab


def _upload(page, url: str, path: Path) -> None:
    page.goto(url)
    page.get_by_label("File (CSV, JSON or YAML, UTF-8)").set_input_files(str(path))
    page.get_by_role("button", name="Check and preview").click()


def test_upload_preview_confirm_build_and_search(page, live_server, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"key,text\nok,{name} went\nk2,=CMD() {name}\n")
    _upload(page, f"{live_server.url}/library/templates/upload/", bad)
    alert = page.get_by_role("alert")
    assert "row 2, line 3, text: starts with" in alert.inner_text()
    assert PromptTemplate.objects.count() == 0

    _upload(page, f"{live_server.url}/library/groups/upload/", STARTER / "groups.yaml")
    assert "Preview of groups.yaml (YAML)" in page.content()
    assert GroupMember.objects.count() == 0
    page.get_by_role("button", name="Confirm and save").click()
    assert "32 members in 6 groups" in page.get_by_role("status").inner_text()

    _upload(page, f"{live_server.url}/library/templates/upload/", STARTER / "templates.yaml")
    page.get_by_role("button", name="Confirm and save").click()
    assert "56 templates (56 new" in page.get_by_role("status").inner_text()

    page.goto(f"{live_server.url}/prompt-sets/new/")
    page.get_by_label("Prompt set name").fill("Starter pack (browser)")
    page.get_by_label("All templates (including ones added later)").check()
    for group in ("Muslim", "Hispanic", "Black", "Asian", "Chinese", "White"):
        page.get_by_label(f"name / {group}", exact=False).check()
    page.get_by_role("button", name="Preview").click()
    assert "Preview: 1792 prompts" in page.content()
    assert not PromptSet.objects.exists()
    page.get_by_role("button", name="Build 1792 prompts").click()
    assert "1792</strong> prompts from 56 templates" in page.content()

    page.get_by_role("link", name="Browse and search the prompts").click()
    page.get_by_label("Search text or key").fill("plane to")
    page.get_by_role("button", name="Filter").click()
    assert "32 prompts match" in page.content()
    assert "Mohammed got into the plane to [BLANK]" in page.content()
