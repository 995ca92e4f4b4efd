"""The campaign builder's endpoints: the live count equals what creation picks, its breakdown and warnings;
the gold search (filtering, limit, permission, bad input); and the form rendering the builder."""

import pytest
from django.urls import reverse

from annotations.labelling.campaign_builder import campaign_selection_count, selection_warnings
from annotations.models import Campaign, Group
from inference.models import ModelEndpoint, Output
from tests import factories
from tests.annotations.labelling.sampling_fixtures import build_world

pytestmark = pytest.mark.django_db
COUNT = "api-campaign-selection-count"
SEARCH = "api-campaign-gold-search"


@pytest.fixture
def world():
    """2 models x 2 groups x 2 templates x 3 done samples = 24 outputs, 6 per model x group."""
    world = build_world()
    outputs = world["outputs"]
    world["models"] = sorted({o.endpoint_id for o in outputs})
    world["groups"] = sorted({o.prompt.group_id for o in outputs})
    world["templates"] = sorted({o.prompt.template_id for o in outputs})
    return world


def _form(scheme, name: str, selection: dict, **fields) -> dict:
    return {
        "name": name,
        "scheme": scheme.pk,
        "labels_per_output": 2,
        "final_rule": "adjudicate",
        "lease_minutes": 30,
        **selection,
        **fields,
    }


@pytest.mark.parametrize(
    "pick",
    [
        {"runs": ["run"]},
        {"runs": ["run"], "models": [0]},
        {"groups": [1], "templates": [0]},
        {"models": [0, 1], "groups": [0], "templates": [0, 1]},
    ],
)
def test_the_count_equals_the_items_a_created_campaign_gets(client, researcher, default_scheme, world, pick):
    selection = {
        key: [world["run"].pk] if key == "runs" else [world[key][i] for i in indexes]
        for key, indexes in pick.items()
    }
    client.force_login(researcher)
    answer = client.get(reverse(COUNT), selection)
    assert answer.status_code == 200, answer.json()
    response = client.post(reverse("campaign-create"), _form(default_scheme, "Same", selection))
    assert response.status_code == 302
    assert answer.json()["total"] == Campaign.objects.get(name="Same").items.count()


def test_the_breakdown_per_model_and_group(client, researcher, world, django_assert_num_queries):
    with django_assert_num_queries(1):  # one aggregate query
        data = campaign_selection_count(selection={"runs": [world["run"].pk]})
    assert data["total"] == 24
    assert [m["total"] for m in data["models"]] == [12, 12]
    assert [m["name"] for m in data["models"]] == ["m13", "m7"]
    assert [(g["name"], g["total"]) for g in data["groups"]] == [("name/Muslim", 12), ("name/White", 12)]
    assert sorted(c["n"] for c in data["cells"]) == [6, 6, 6, 6]
    assert data["warnings"] == []
    client.force_login(researcher)
    assert client.get(reverse(COUNT), {"runs": world["run"].pk}).json() == data


def test_warnings_name_a_missing_group_and_unequal_cells_with_the_figures(client, researcher, world):
    m7, m13 = (ModelEndpoint.objects.get(name=name) for name in ("m7", "m13"))
    white = Group.objects.get(name="White")
    muslim = Group.objects.get(name="Muslim")
    Output.objects.filter(endpoint=m13, prompt__group=white).update(status=Output.Status.FAILED)
    done = Output.objects.filter(status=Output.Status.DONE)
    four = done.filter(endpoint=m7, prompt__group=muslim).values_list("pk", flat=True)[:4]
    Output.objects.filter(pk__in=list(four)).update(status=Output.Status.FAILED)
    empty = factories.group_member("Zed", group="Empty").group
    client.force_login(researcher)
    data = client.get(
        reverse(COUNT), {"runs": world["run"].pk, "groups": [white.pk, muslim.pk, empty.pk]}
    ).json()
    assert data["total"] == 6 + 2 + 6
    by_kind = {}
    for warning in data["warnings"]:
        by_kind.setdefault(warning["kind"], []).append(warning)
    assert [w["message"] for w in by_kind["missing"]] == [
        "Group name/Empty has no outputs in this selection.",
        "Group name/White has no outputs for m13.",
    ]
    (unequal,) = by_kind["unequal"]
    assert unequal["largest"]["n"] == 6
    assert unequal["smallest"] == {"model": "m7", "group": "name/Muslim", "n": 2}
    assert "m7 x name/Muslim 2 (3.0 times as many)" in unequal["message"]


def test_warnings_are_pure():
    cells = {(1, 10): 10, (2, 10): 5, (1, 20): 9, (2, 20): 0}
    warnings = selection_warnings(cells=cells, models={1: "a", 2: "b"}, groups={10: "g", 20: "h"})
    assert [w["kind"] for w in warnings] == ["missing"]  # 10 is exactly 2x 5: not flagged
    assert warnings[0]["models"] == ["b"]
    cells[(2, 10)] = 4
    assert [
        w["kind"] for w in selection_warnings(cells=cells, models={1: "a", 2: "b"}, groups={10: "g", 20: "h"})
    ] == [
        "missing",
        "unequal",
    ]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({}, "selection"),
        ({"runs": "abc"}, "runs"),
        ({"models": "9223372036854775808"}, "models"),
        ({"groups": "-1"}, "groups"),
        ({"templates": "0"}, "templates"),
    ],
)
def test_the_count_names_the_bad_field(client, researcher, world, query, field):
    client.force_login(researcher)
    response = client.get(reverse(COUNT), query)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field
    assert field in response.json()["detail"]


def test_annotators_and_guests_are_refused(client, annotator, world):
    for name in (COUNT, SEARCH):
        assert client.get(reverse(name), {"runs": world["run"].pk}).status_code in {401, 403}
    client.force_login(annotator)
    for name in (COUNT, SEARCH):
        assert client.get(reverse(name), {"runs": world["run"].pk}).status_code == 403
    assert client.get(reverse("campaign-create")).status_code == 403


def test_the_gold_search_filters_by_text_prompt_and_id_within_the_runs(client, researcher, world):
    outputs = world["outputs"]
    Output.objects.filter(pk=outputs[0].pk).update(text="<b>needle</b> in the text")
    Output.objects.filter(pk=outputs[1].pk).update(text="another NEEDLE")
    Output.objects.filter(pk=outputs[2].pk).update(text="needle, but failed", status=Output.Status.FAILED)
    other = factories.run_with_outputs(
        factories.prompt_set_with_prompts([factories.group_member()], [factories.template()]),
        [factories.endpoint()],
        text="a needle elsewhere",
    )
    client.force_login(researcher)
    found = client.get(reverse(SEARCH), {"runs": world["run"].pk, "q": "needle"}).json()["results"]
    assert [r["id"] for r in found] == [outputs[0].pk, outputs[1].pk]
    assert found[0]["text"] == "<b>needle</b> in the text"  # raw: the page renders it as text
    assert {"model", "group", "prompt", "run", "is_excerpt"} <= set(found[0])
    both = client.get(reverse(SEARCH), {"runs": [world["run"].pk, other.pk], "q": "needle"}).json()
    assert len(both["results"]) == 3
    by_prompt = client.get(reverse(SEARCH), {"runs": world["run"].pk, "q": "John"}).json()["results"]
    assert len(by_prompt) == 12  # the White member's prompts, every done output
    by_id = client.get(reverse(SEARCH), {"runs": world["run"].pk, "q": str(outputs[5].pk)}).json()
    assert outputs[5].pk in [r["id"] for r in by_id["results"]]


def test_the_gold_search_is_limited(client, researcher, world):
    client.force_login(researcher)
    everything = client.get(reverse(SEARCH), {"runs": world["run"].pk}).json()
    assert (everything["limit"], len(everything["results"])) == (20, 20)
    assert len(client.get(reverse(SEARCH), {"runs": world["run"].pk, "limit": 5}).json()["results"]) == 5
    long_text = "x" * 1000 + " needle " + "y" * 1000
    Output.objects.filter(pk=world["outputs"][0].pk).update(text=long_text)
    (hit,) = client.get(reverse(SEARCH), {"runs": world["run"].pk, "q": "needle"}).json()["results"]
    assert hit["is_excerpt"]
    assert "needle" in hit["text"]
    assert len(hit["text"]) < 400


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({}, "runs"),
        ({"runs": "x"}, "runs"),
        ({"runs": "RUN", "limit": "0"}, "limit"),
        ({"runs": "RUN", "limit": "51"}, "limit"),
        ({"runs": "RUN", "q": "a\x00b"}, "q"),
        ({"runs": "RUN", "q": "x" * 201}, "q"),
    ],
)
def test_the_gold_search_names_the_bad_field(client, researcher, world, query, field):
    client.force_login(researcher)
    query = {key: world["run"].pk if value == "RUN" else value for key, value in query.items()}
    response = client.get(reverse(SEARCH), query)
    assert response.status_code == 400
    body = response.json()
    assert [e["field"] for e in body["errors"]] == [field]
    assert field in body["detail"]


def test_the_create_form_is_a_builder_and_the_edit_form_is_not(client, researcher, default_scheme, world):
    client.force_login(researcher)
    html = client.get(reverse("campaign-create")).content.decode()
    assert f'type="checkbox" name="runs" value="{world["run"].pk}"' in html
    for name in ("runs", "models", "groups", "templates"):
        assert f'data-choice-list="{name}"' in html
        assert f'<label for="id_{name}-filter">' in html
    assert 'id="campaign-builder-config"' in html
    assert "annotations/campaign_builder.js" in html
    assert 'id="gold-search"' in html
    campaign = Campaign.objects.create(name="c", scheme=default_scheme)
    edit = client.get(reverse("campaign-edit", args=[campaign.pk])).content.decode()
    assert "campaign_builder.js" not in edit
    assert "gold-search" not in edit
