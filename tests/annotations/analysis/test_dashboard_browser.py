"""The dashboard in a real browser: our own plotly.js draws every chart and nothing external loads."""

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from annotations.models import Campaign
from tests.annotations.analysis.dashboard_fixtures import build_campaign
from tests.support.browser import chromium, log_in, requires_chromium

pytestmark = [pytest.mark.browser, requires_chromium, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_page():
    """A headless Chromium page that accepts downloads."""
    with chromium() as browser:
        yield browser.new_page(accept_downloads=True)


def test_charts_render_from_local_plotly_and_download_as_images(
    live_server, browser_page, default_scheme, make_user
):
    campaign, _, _ = build_campaign(default_scheme, make_user)
    make_user("researcher", "viewer")
    page = browser_page
    external = []
    local = (live_server.url, "blob:", "data:")  # image downloads go through in-page blobs
    page.on("request", lambda r: None if r.url.startswith(local) else external.append(r.url))
    log_in(page, live_server.url, "viewer")
    page.goto(f"{live_server.url}/dashboards/?campaign={campaign.pk}&bootstrap=0")
    for key in ("refusal-rate", "refusal-heatmap", "categories", "agreement", "kappa", "annotators"):
        expect(page.locator(f"#fig-{key} .main-svg").first, key).to_be_visible()
    assert page.evaluate("typeof window.Plotly.downloadImage") == "function"
    for image in ("svg", "png"):
        with page.expect_download() as download:
            page.click(f"button[data-download={image}][data-target=fig-refusal-rate]")
        assert download.value.suggested_filename.endswith(f"-refusal-rate.{image}")
    assert external == []


def test_the_contents_stay_in_view_jump_to_tables_and_open_folded_sections(
    live_server, browser_page, default_scheme, make_user
):
    campaign, _, _ = build_campaign(default_scheme, make_user)
    make_user("researcher", "reader")
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, live_server.url, "reader")
    page.goto(f"{live_server.url}/dashboards/?campaign={campaign.pk}&bootstrap=0")
    expect(page.locator("#findings")).to_be_visible()
    expect(page.locator(".findings li").first).to_contain_text("llama-7b")
    # AUDIT_SCREENSHOTS_DIR=docs/img refreshes the screenshots in docs/researchers.md
    shots = os.environ.get("AUDIT_SCREENSHOTS_DIR")
    if shots:
        expect(page.locator("#fig-refusal-rate .main-svg").first).to_be_visible()
        page.screenshot(path=str(Path(shots) / "dashboard-top.png"))
    toc = page.locator("nav.toc")
    # a section folds by its heading, and unfolds again
    agreement = page.locator("details.fold:has(#s-agreement)")
    expect(page.locator("#t-agreement")).to_be_visible()
    page.click("#s-agreement")
    expect(agreement).not_to_have_attribute("open", "")
    expect(page.locator("#t-agreement")).to_be_hidden()
    # a contents link into the folded section opens it and lands on the table
    toc.locator('a[href="#t-agreement"]').click()
    expect(agreement).to_have_attribute("open", "")
    expect(page).to_have_url(re.compile(r"#t-agreement$"))
    top = page.evaluate("document.getElementById('t-agreement').getBoundingClientRect().top")
    assert -2 <= top < 200, top
    # far down the page the contents are still on screen (sticky)
    box = toc.bounding_box()
    assert box is not None
    assert 0 <= box["y"] < 800, box
    # the model-to-model comparison shows both models: a slope chart over them and a row per group
    expect(page.locator("#fig-model-slope .main-svg").first).to_be_visible()
    ticks = page.locator("#fig-model-slope .xtick text").all_text_contents()
    assert sorted(ticks) == ["llama-13b", "llama-7b"], ticks
    expect(page.locator("table[aria-labelledby=t-model_changes] tbody tr")).to_have_count(2)
    if shots:
        page.locator("#s-models").scroll_into_view_if_needed()
        page.evaluate("window.scrollBy(0, -10)")
        page.screenshot(path=str(Path(shots) / "dashboard-model-comparison.png"))
    # the findings' links jump too
    page.locator(".findings a[href='#t-pairwise']").first.click()
    top = page.evaluate("document.getElementById('t-pairwise').getBoundingClientRect().top")
    assert -2 <= top < 200, top


def test_report_downloads_arrive_and_the_html_stands_alone_and_prints(
    live_server, browser_page, default_scheme, make_user, tmp_path
):
    campaign, _, _ = build_campaign(default_scheme, make_user)
    Campaign.objects.filter(pk=campaign.pk).update(name="Llama 2 audit, Dec.")
    make_user("researcher", "author")
    page = browser_page
    log_in(page, live_server.url, "author")
    page.goto(f"{live_server.url}/dashboards/?campaign={campaign.pk}&bootstrap=0")
    files = {}
    for label, extension in (("Download report (HTML)", "html"), ("Download report (LaTeX)", "tex")):
        with page.expect_download() as download:
            page.get_by_role("link", name=label).click()
        assert download.value.failure() is None
        assert download.value.suggested_filename == f"llama-2-audit-dec-report.{extension}"
        files[extension] = tmp_path / download.value.suggested_filename
        download.value.save_as(files[extension])
    latex = files["tex"].read_text(encoding="utf-8")
    assert r"\toprule" in latex
    assert r"\caption{Refusal rate per group and model (" in latex
    html = files["html"].read_text(encoding="utf-8")
    assert "<title>Audit report: Llama 2 audit, Dec.</title>" in html
    # opened from disk with no server, the page asks for nothing but itself and shows its charts
    requests = []
    offline = page.context.browser.new_page()
    offline.on("request", lambda r: requests.append(r.url))
    offline.goto(files["html"].as_uri())
    expect(offline.locator("svg.figure").first).to_be_visible()
    expect(offline.locator("#t-pairwise")).to_be_visible()
    assert requests == [files["html"].as_uri()], requests
    # printed, the contents list goes and the tables stay; Chromium makes a PDF of it
    offline.emulate_media(media="print")
    expect(offline.locator("nav.toc")).to_be_hidden()
    expect(offline.locator("table").first).to_be_visible()
    pdf = offline.pdf(format="A4")
    assert pdf.startswith(b"%PDF")
    assert len(pdf) > 10_000
