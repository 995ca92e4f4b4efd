"""The machine-assisted section in a real browser: the assumptions, the table and the forest plot render."""

import pytest
from playwright.sync_api import expect

from annotations.models import Campaign
from tests.annotations.analysis.machine_assisted_fixtures import add_scores, build_world, make_campaign
from tests.support.browser import chromium, log_in, requires_chromium

pytestmark = [pytest.mark.browser, requires_chromium, pytest.mark.django_db(transaction=True)]


def test_section_and_forest_plot_render(live_server, default_scheme, make_user, settings):
    settings.AUDIT_MACHINE_ASSISTED_MIN_LABELS = 2  # 8 outputs a cell: below the default minimum (80)
    settings.AUDIT_MACHINE_ASSISTED_MIN_EXPECTED = 0  # and no expected-count rule either
    world = build_world(default_scheme, n=8)
    add_scores(world, world.all_outputs())
    outputs = world.all_outputs()
    drawn = {o.pk for o in outputs[::2]}
    campaign = make_campaign(
        default_scheme, world, plan=Campaign.SamplingPlan.UNIFORM, drawn=drawn, labelled=drawn,
        pi={o.pk: 0.5 for o in outputs},
    )  # fmt: skip
    make_user("researcher", "viewer")
    with chromium() as browser:
        page = browser.new_page()
        log_in(page, live_server.url, "viewer")
        page.goto(f"{live_server.url}/dashboards/?campaign={campaign.pk}&bootstrap=0")
        section = page.locator("section[aria-labelledby=s-machine_assisted]")
        expect(section.get_by_role("heading", name="Machine-assisted estimates", exact=True)).to_be_visible()
        expect(section.get_by_text("The scorer was fixed before the draw")).to_be_visible()
        plot = page.locator("#fig-machine-assisted")
        expect(plot.locator(".main-svg").first).to_be_visible()
        expect(plot.locator(".legendtext", has_text="PPI++")).to_have_count(1)
        # one marker per method and cell that is defined: human and PPI++ in both groups (no active plan)
        expect(plot.locator(".scatterlayer .point")).to_have_count(4)
        expect(section.locator("td .undefined").first).to_contain_text("undefined (the sampling plan")
