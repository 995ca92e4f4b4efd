"""The dashboard in a real browser: our own plotly.js draws every chart and nothing external loads."""

import pytest

from tests.annotations.dashboard_fixtures import build_campaign
from tests.conftest import DEMO_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
]


@pytest.fixture
def browser_page(monkeypatch):
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API keeps an event loop in this thread; the ORM calls of the test and of
    # live_server's teardown are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        except Exception as error:
            pytest.skip(f"chromium cannot start: {error}")
        page = browser.new_page(accept_downloads=True)
        yield page
        browser.close()


def test_charts_render_from_local_plotly_and_download_as_images(
    live_server, browser_page, default_scheme, make_user
):
    campaign, _, _ = build_campaign(default_scheme, make_user)
    make_user("researcher", "viewer")
    page = browser_page
    external = []
    local = (live_server.url, "blob:", "data:")  # image downloads go through in-page blobs
    page.on("request", lambda r: None if r.url.startswith(local) else external.append(r.url))
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "viewer")
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{live_server.url}/dashboards/?campaign={campaign.pk}&bootstrap=0")
    page.wait_for_selector("#fig-refusal-rate .main-svg")
    for key in ("refusal-rate", "refusal-heatmap", "categories", "agreement", "kappa", "annotators"):
        assert page.locator(f"#fig-{key} .main-svg").count() >= 1, key
    assert page.evaluate("typeof window.Plotly.downloadImage") == "function"
    for image in ("svg", "png"):
        with page.expect_download() as download:
            page.click(f"button[data-download={image}][data-target=fig-refusal-rate]")
        assert download.value.suggested_filename.endswith(f"-refusal-rate.{image}")
    assert external == []
