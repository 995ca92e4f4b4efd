"""The prompt library in headless Chromium (Debian's), driven by Playwright: upload with preview and
confirmation, a rejected upload, building the starter prompt set and searching it."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

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
        expect(tab).to_have_url(f"{live_server.url}/")
        yield tab


def _upload(page, url: str, path: Path) -> None:
    page.goto(url)
    page.get_by_label("File (CSV, JSON or YAML, UTF-8)").set_input_files(str(path))
    page.get_by_role("button", name="Check and preview").click()


def test_upload_preview_confirm_build_and_search(page, live_server, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"key,text\nok,{name} went\nk2,=CMD() {name}\n")
    _upload(page, f"{live_server.url}/library/templates/upload/", bad)
    expect(page.get_by_role("alert")).to_contain_text("row 2, line 3, text: starts with")
    assert PromptTemplate.objects.count() == 0

    _upload(page, f"{live_server.url}/library/groups/upload/", STARTER / "groups.yaml")
    expect(page.get_by_role("heading", name="Preview of groups.yaml (YAML)")).to_be_visible()
    assert GroupMember.objects.count() == 0
    page.get_by_role("button", name="Confirm and save").click()
    expect(page.get_by_role("status")).to_contain_text("32 members in 6 groups")

    _upload(page, f"{live_server.url}/library/templates/upload/", STARTER / "templates.yaml")
    page.get_by_role("button", name="Confirm and save").click()
    expect(page.get_by_role("status")).to_contain_text("56 templates (56 new")

    page.goto(f"{live_server.url}/prompt-sets/new/")
    page.get_by_label("Prompt set name").fill("Starter pack (browser)")
    page.get_by_label("All templates (including ones added later)").check()
    for group in ("Muslim", "Hispanic", "Black", "Asian", "Chinese", "White"):
        page.get_by_label(f"name / {group}", exact=False).check()
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("heading", name="Preview: 1792 prompts")).to_be_visible()
    assert not PromptSet.objects.exists()
    page.get_by_role("button", name="Build 1792 prompts").click()
    total = page.locator("strong", has_text=re.compile(r"^1792$"))
    expect(page.locator("main p", has=total)).to_contain_text("1792 prompts from 56 templates")

    page.get_by_role("link", name="Browse and search the prompts").click()
    page.get_by_label("Search text or key").fill("plane to")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("main")).to_contain_text("32 prompts match")
    expect(page.locator("main")).to_contain_text("Mohammed got into the plane to [BLANK]")
