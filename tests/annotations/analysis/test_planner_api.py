"""GET /api/stats/plan/: parameters, errors naming the parameter, permissions, and the plan it answers."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator

from annotations.analysis.planner import label_plan
from annotations.models import Campaign, LabelScheme
from tests.annotations.analysis.planner_fixtures import build_pilot
from tests.support.scores import scorer as make_scorer

URL = "/api/stats/plan/"


@pytest.fixture
def pilot_world(default_scheme):
    """See planner_fixtures.build_pilot."""
    return build_pilot(default_scheme)


@pytest.fixture
def researcher_client(researcher):
    client = Client()
    client.force_login(researcher)
    return client


def _query(world, **extra):
    return {"pilot": world["campaign"].pk, "scorer": world["judge"].pk, **extra}


def test_plan_answers_the_service_result(researcher_client, pilot_world):
    response = researcher_client.get(URL, _query(pilot_world, half_width="0.2"))
    assert response.status_code == 200
    body = response.json()
    expected = label_plan(pilot=pilot_world["campaign"], scorer=pilot_world["judge"], half_width=0.2)
    assert body["rows"] == expected["rows"]
    assert body["totals"] == expected["totals"]
    assert body["summary"] == expected["summary"]
    assert body["half_width"] == 0.2
    assert body["pilot"] == {"id": pilot_world["campaign"].pk, "name": pilot_world["campaign"].name}
    assert body["scorer"]["version"] == "v2"
    assert len(body["rows"]) == 4


def test_half_width_defaults_to_three_points(researcher_client, pilot_world):
    body = researcher_client.get(URL, _query(pilot_world)).json()
    assert body["half_width"] == 0.03
    assert "±3 points" in body["summary"]


@pytest.mark.parametrize("value", ["0", "-0.1", "0.51", "abc", "nan", "inf", "1e-400", "0.03\x00"])
def test_half_width_outside_the_range_is_refused_naming_it(researcher_client, pilot_world, value):
    response = researcher_client.get(URL, _query(pilot_world, half_width=value))
    assert response.status_code == 400
    body = response.json()
    assert [e["field"] for e in body["errors"]] == ["half_width"]
    assert "half_width" in body["detail"]  # a NUL is refused by the middleware, naming the parameter


def test_half_width_at_the_upper_bound_is_accepted(researcher_client, pilot_world):
    assert researcher_client.get(URL, _query(pilot_world, half_width="0.5")).status_code == 200


def test_missing_and_malformed_ids_are_refused_naming_each(researcher_client):
    body = researcher_client.get(URL).json()
    assert [e["field"] for e in body["errors"]] == ["pilot", "scorer"]
    assert "pilot is required" in body["detail"]
    response = researcher_client.get(URL, {"pilot": "x", "scorer": "9223372036854775808", "half_width": "2"})
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["pilot", "scorer", "half_width"]


def test_unknown_pilot_and_scorer_are_refused_naming_each(researcher_client, pilot_world):
    response = researcher_client.get(URL, {"pilot": 999_999, "scorer": 999_998})
    assert response.status_code == 400
    body = response.json()
    assert body["errors"] == [
        {"field": "pilot", "message": "pilot: campaign 999999 does not exist"},
        {"field": "scorer", "message": "scorer: scorer 999998 does not exist"},
    ]


def test_a_scorer_of_another_scheme_is_refused(researcher_client, pilot_world):
    other = LabelScheme.objects.create(key="other", name="Other")
    stranger = make_scorer(other, name="stranger")
    flags = make_scorer(None, name="flags-only")
    for scorer in (stranger, flags):
        response = researcher_client.get(URL, {"pilot": pilot_world["campaign"].pk, "scorer": scorer.pk})
        assert response.status_code == 400
        errors = response.json()["errors"]
        assert errors == [
            {
                "field": "scorer",
                "message": f"scorer: {scorer.name} does not assign the categories of the pilot's scheme",
            }
        ]


@pytest.mark.parametrize(
    ("role", "status"),
    [("annotator", 403), ("researcher", 200), ("admin", 200), ("annotator-with-dashboards", 200)],
)
def test_permissions_follow_the_other_stats_apis(make_user, pilot_world, role, status):
    user = make_user("annotator" if role.startswith("annotator") else role)
    if role == "annotator-with-dashboards":
        user.user_permissions.add(Permission.objects.get(codename="view_dashboard"))
    client = Client()
    client.force_login(user)
    assert client.get(URL, _query(pilot_world, half_width="0.2")).status_code == status


def test_anonymous_is_refused(pilot_world):
    assert Client().get(URL, _query(pilot_world)).status_code in {401, 403}


def test_the_endpoint_is_in_the_openapi_schema():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"]["/api/stats/plan/"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert set(parameters) == {"pilot", "scorer", "half_width"}
    assert parameters["pilot"]["required"]
    assert parameters["scorer"]["required"]
    assert parameters["half_width"]["schema"]["type"] == "number"


def test_the_create_form_offers_the_box_and_the_edit_form_does_not(researcher_client, pilot_world):
    campaign = pilot_world["campaign"]
    Campaign.objects.filter(pk=campaign.pk).update(name="<b>pilot</b>")
    html = researcher_client.get(reverse("campaign-create")).content.decode()
    assert "Plan the human labels" in html
    assert (
        f'<option value="{campaign.pk}" data-scheme="{campaign.scheme_id}">&lt;b&gt;pilot&lt;/b&gt;</option>'
        in html
    )
    assert "annotations/label_planner.js" in html
    assert html.index('id="label-planner"') < html.index('<form method="post"')  # outside the form
    edit = researcher_client.get(reverse("campaign-edit", args=[campaign.pk])).content.decode()
    assert "Plan the human labels" not in edit
