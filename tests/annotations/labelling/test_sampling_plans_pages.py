"""Sampling plans over the API and the campaign form: create, read back, and the plan's refusals."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from annotations.models import Campaign
from tests.annotations.labelling.sampling_fixtures import build_judge, build_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    """See sampling_fixtures.build_world."""
    return build_world()


@pytest.fixture
def judge(default_scheme, world):
    """See sampling_fixtures.build_judge."""
    return build_judge(default_scheme, world["outputs"])


def _api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_api_round_trip(researcher, default_scheme, world, judge):
    api = _api(researcher)
    body = {
        "name": "Active",
        "scheme": default_scheme.key,
        "selection": world["selection"],
        "seed": 11,
        "sampling_plan": "active",
        "sampling_budget": 8,
        "sampling_scorer": judge.pk,
    }
    created = api.post("/api/campaigns/", body, format="json")
    assert created.status_code == 201, created.json()
    data = created.json()
    campaign = Campaign.objects.get(pk=data["id"])
    assert (data["sampling_plan"], data["sampling_scorer"]) == ("active", judge.pk)
    assert data["sampling"]["population"] == 24
    assert data["sampling"]["drawn"] == data["item_count"] == campaign.items.count()
    detail = api.get(f"/api/campaigns/{campaign.pk}/").json()
    assert (detail["sampling_plan"], detail["sampling"]) == ("active", data["sampling"])
    refused = api.patch(f"/api/campaigns/{campaign.pk}/", {"sampling_budget": 3}, format="json")
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "sampling_budget"
    bad = api.post("/api/campaigns/", {**body, "name": "x", "sampling_budget": None}, format="json")
    assert bad.status_code == 400
    assert bad.json()["errors"] == [
        {"row": None, "field": "sampling_budget", "message": bad.json()["errors"][0]["message"]}
    ]
    assert "needs a budget" in bad.json()["detail"]
    assert not Campaign.objects.filter(name="x").exists()


def _form(default_scheme, world, **fields) -> dict:
    return {
        "name": "From the form",
        "scheme": default_scheme.pk,
        "runs": [world["run"].pk],
        "labels_per_output": 2,
        "final_rule": "adjudicate",
        "lease_minutes": 30,
        **fields,
    }


def test_form_round_trip(client, researcher, default_scheme, world, judge):
    client.force_login(researcher)
    page = client.get(reverse("campaign-create")).content.decode()
    assert 'name="sampling_plan"' in page
    assert "Active: more often where the scorer is uncertain" in page
    refused = client.post(reverse("campaign-create"), _form(default_scheme, world, sampling_plan="active"))
    assert refused.status_code == 200
    assert "the active plan needs a budget" in refused.content.decode()
    assert not Campaign.objects.exists()
    response = client.post(
        reverse("campaign-create"),
        _form(default_scheme, world, sampling_plan="stratified", sampling_per_cell=2),
    )
    campaign = Campaign.objects.get(name="From the form")
    assert response.status_code == 302
    assert (campaign.sampling_plan, campaign.items.count(), campaign.frame.count()) == ("stratified", 8, 24)
    html = " ".join(client.get(reverse("campaign-detail", args=[campaign.pk])).content.decode().split())
    assert "Sampling plan: <strong>Stratified: equal n per model x group</strong>" in html
    assert "drew 8 of 24 selected outputs (2 per model x group, 4 cells)" in html


def test_campaign_page_shows_an_active_draw_and_a_campaign_from_before_plans(  # noqa: PLR0917 (fixtures)
    client, researcher, default_scheme, world, judge, django_assert_max_num_queries
):
    from annotations.labelling.campaigns import campaign_create

    plan = {"sampling_plan": "active", "sampling_budget": 8, "sampling_scorer": judge, "seed": 11}
    probe = campaign_create(actor=None, name="p", scheme=default_scheme, selection=world["selection"], **plan)
    undrawn = probe.frame.filter(is_drawn=False).values_list("output_id", flat=True).first()
    gold = [{"output": undrawn, "category": "answer"}]
    campaign = campaign_create(
        actor=None, name="a", scheme=default_scheme, selection=world["selection"], gold=gold, **plan
    )
    client.force_login(researcher)
    with django_assert_max_num_queries(12):
        html = " ".join(client.get(reverse("campaign-detail", args=[campaign.pk])).content.decode().split())
    drawn = campaign.sampling["drawn"]
    assert f"drew {drawn} of 24 selected outputs (expected 8.0, uniform share 0.2)" in html
    assert "scorer judge @v2" in html
    assert campaign.sampling["gold_outside"] == [undrawn]
    assert "1 gold outside the draw (not in estimates)" in html
    Campaign.objects.filter(pk=campaign.pk).update(sampling={}, sampling_plan="all", sampling_scorer=None)
    html = " ".join(client.get(reverse("campaign-detail", args=[campaign.pk])).content.decode().split())
    assert "Sampling plan: <strong>All outputs</strong></p>" in html
