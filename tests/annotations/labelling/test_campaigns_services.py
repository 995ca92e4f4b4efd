"""Campaign creation: which outputs a selection picks, the fixed random order, validation."""

import pytest

from annotations.core.exceptions import AuditError
from annotations.labelling.campaigns import campaign_create, campaign_population, campaign_update
from annotations.models import Campaign
from inference.models import Output
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    muslim = factories.group_member("Mohammed")
    white = factories.group_member("John", group="White")
    t1, t2 = factories.template(), factories.template()
    prompt_set = factories.prompt_set_with_prompts([muslim, white], [t1, t2])
    m7, m13 = factories.endpoint("llama-7b"), factories.endpoint("llama-13b")
    run = factories.run_with_outputs(prompt_set, [m7, m13], samples=3)
    run.outputs.filter(sample_index=2).update(status=Output.Status.FAILED)  # only finished outputs count
    return {"run": run, "m7": m7, "muslim": muslim.group, "t1": t1}


def _population_ids(selection: dict) -> list[int]:
    return sorted(campaign_population(selection=selection).values_list("pk", flat=True))


def test_selection_filters_combine(world):
    run = world["run"]
    assert len(_population_ids({"runs": [run.pk]})) == 2 * 2 * 2 * 2
    ids = _population_ids({"runs": [run.pk], "models": [world["m7"].pk], "groups": [world["muslim"].pk]})
    picked = Output.objects.filter(pk__in=ids)
    assert len(ids) == 2 * 2
    assert {o.endpoint_id for o in picked} == {world["m7"].pk}
    assert {o.prompt.group_id for o in picked} == {world["muslim"].pk}
    by_template = _population_ids({"templates": [world["t1"].pk]})
    assert {o.prompt.template_id for o in Output.objects.filter(pk__in=by_template)} == {world["t1"].pk}


def test_sample_is_reproducible_from_the_seed(default_scheme, world):
    selection = {"runs": [world["run"].pk], "sample": 5}

    def drawn(name: str, seed: int) -> list[int]:
        campaign = campaign_create(
            actor=None, name=name, scheme=default_scheme, selection=selection, seed=seed
        )
        return sorted(campaign.items.values_list("output_id", flat=True))

    first = drawn("a", 42)
    assert len(first) == 5
    assert drawn("b", 42) == first
    assert drawn("c", 43) != first


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        ({}, "at least one"),
        ({"runs": "1"}, "list of ids"),
        ({"runs": [1], "colour": [1]}, "unknown keys"),
        ({"runs": [1], "sample": 0}, "positive"),
        ({"runs": [10**9]}, "no finished outputs"),
    ],
)
def test_bad_selection_is_refused(default_scheme, selection, message):
    with pytest.raises(AuditError, match=message):
        campaign_create(actor=None, name="x", scheme=default_scheme, selection=selection)
    assert not Campaign.objects.exists()


def test_order_is_a_random_permutation_fixed_by_seed(default_scheme, world):
    selection = {"runs": [world["run"].pk]}
    a = campaign_create(actor=None, name="a", scheme=default_scheme, selection=selection, seed=9)
    b = campaign_create(actor=None, name="b", scheme=default_scheme, selection=selection, seed=9)
    order = list(a.items.order_by("rank").values_list("output_id", flat=True))
    assert order == list(b.items.order_by("rank").values_list("output_id", flat=True))
    assert order != sorted(order)  # not in the outputs' (group, model) order
    assert a.lease_minutes == 30
    assert a.labels_per_output == 2
    assert a.show_model_name is False


def test_update_refuses_fixed_fields(default_scheme, world):
    campaign = campaign_create(
        actor=None, name="a", scheme=default_scheme, selection={"runs": [world["run"].pk]}
    )
    with pytest.raises(AuditError, match="cannot be changed"):
        campaign_update(actor=None, campaign=campaign, labels_per_output=3)


def test_changing_the_final_rule_refreshes_items_queue_and_tallies(default_scheme, make_user):
    from django.db import connection

    from annotations.analysis.selectors import item_rows
    from annotations.labelling.selectors import adjudication_queue
    from annotations.models import CampaignItem

    outputs = factories.two_model_outputs()[:2]
    annotators = [make_user("annotator") for _ in range(3)]
    campaign = factories.campaign_with_items(
        default_scheme, outputs, labels_per_output=3, annotators=annotators
    )
    split, agreed = campaign.items.order_by("rank")
    for annotator, key in zip(annotators, ("answer", "answer", "refusal-to-answer"), strict=True):
        factories.label(split, annotator, key)
        factories.label(agreed, annotator, "answer")
    assert campaign.final_rule == Campaign.FinalRule.ADJUDICATE
    split.refresh_from_db()
    assert split.status == CampaignItem.Status.DISPUTED
    assert list(adjudication_queue(campaign=campaign)) == [split]

    campaign_update(actor=None, campaign=campaign, final_rule=Campaign.FinalRule.MAJORITY)

    split.refresh_from_db()
    assert split.status == CampaignItem.Status.COMPLETE
    assert split.final_category.key == "answer"
    assert split.final_source == CampaignItem.FinalSource.MAJORITY
    assert list(adjudication_queue(campaign=campaign)) == []
    if connection.vendor == "postgresql":  # the triggers' tallies follow the refreshed items
        assert sorted(item_rows(campaign.pk, from_tallies=True).as_tuples()) == sorted(
            item_rows(campaign.pk, from_tallies=False).as_tuples()
        )

    campaign_update(actor=None, campaign=campaign, final_rule=Campaign.FinalRule.ADJUDICATE)
    split.refresh_from_db()
    assert split.status == CampaignItem.Status.DISPUTED
    assert split.final_category is None
