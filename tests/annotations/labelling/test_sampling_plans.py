"""Sampling plans (#15): each plan's items and frame against the pure draws, seeds, every refusal."""

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotations.core.exceptions import AuditError
from annotations.labelling.campaigns import campaign_create, campaign_delete, campaign_update
from annotations.labelling.sampling_plans import DEFAULT_UNIFORM_SHARE, SAMPLING_FIELDS
from annotations.models import AuditEvent, Campaign, CampaignFrameOutput, CampaignItem
from annotations.stats.sampling import sample_active, sample_stratified, sample_uniform
from inference.models import Score, Scorer
from tests import factories
from tests.annotations.labelling.sampling_fixtures import build_judge, build_world, judge_answer_probability
from tests.support.scores import scorer

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    """See sampling_fixtures.build_world."""
    return build_world()


@pytest.fixture
def judge(default_scheme, world):
    """See sampling_fixtures.build_judge."""
    return build_judge(default_scheme, world["outputs"])


def _probabilities(world, default_scheme) -> np.ndarray:
    """The judge's (N, K) probabilities over the scheme's categories, built by hand."""
    keys = list(default_scheme.categories.order_by("order").values_list("key", flat=True))
    matrix = np.zeros((len(world["outputs"]), len(keys)))
    for i, _ in enumerate(world["outputs"]):
        p = judge_answer_probability(i)
        matrix[i, keys.index("answer")], matrix[i, keys.index("refusal-to-answer")] = p, 1 - p
    return matrix


def _create(default_scheme, world, name="c", **kwargs) -> Campaign:
    kwargs.setdefault("seed", 11)
    return campaign_create(
        actor=None, name=name, scheme=default_scheme, selection=world["selection"], **kwargs
    )


def _items(campaign) -> dict[int, float]:
    return dict(campaign.items.values_list("output_id", "inclusion_probability"))


def _frame(campaign) -> list[tuple[int, float, bool]]:
    return list(
        campaign.frame.order_by("output_id").values_list("output_id", "inclusion_probability", "is_drawn")
    )


def _expect(campaign, world, draw) -> None:
    """The campaign's items and frame are exactly the pure draw over the population in pk order."""
    ids = [o.pk for o in world["outputs"]]
    pi = draw.inclusion_probabilities
    assert _frame(campaign) == [
        (pk, float(p), bool(d)) for pk, p, d in zip(ids, pi, draw.selected, strict=True)
    ]
    assert _items(campaign) == pytest.approx({ids[i]: float(pi[i]) for i in draw.indices})
    frame = campaign.frame.get(output_id=ids[0])
    assert (frame.endpoint_id, frame.prompt_id) == (
        world["outputs"][0].endpoint_id,
        world["outputs"][0].prompt_id,
    )
    assert sorted(campaign.items.values_list("rank", flat=True)) == list(range(draw.size))
    assert campaign.sampling["population"] == len(ids)
    assert campaign.sampling["drawn"] == draw.size == campaign.items.count()
    assert campaign.sampling["expected_total"] == pytest.approx(draw.expected_size)
    assert campaign.sampling["seed"] == campaign.seed


def test_plan_all_is_every_output_with_probability_one_and_no_frame(default_scheme, world):
    campaign = _create(default_scheme, world)
    assert campaign.sampling_plan == Campaign.SamplingPlan.ALL
    assert set(_items(campaign).values()) == {1.0}
    assert campaign.items.count() == 24
    assert not campaign.frame.exists()
    assert campaign.sampling | {"gold_outside": []} == {
        "budget": None, "fraction": None, "per_cell": None, "uniform_share": None, "uncertainty": None,
        "seed": 11, "population": 24, "cells": None, "expected_total": 24.0, "drawn": 24,
        "scorer_version": None, "gold_outside": [],
    }  # fmt: skip


@pytest.mark.parametrize(("kwargs", "n"), [({"sampling_budget": 7}, 7), ({"sampling_fraction": 0.25}, 6)])
def test_uniform_plan_is_the_pure_simple_random_sample(default_scheme, world, kwargs, n):
    campaign = _create(default_scheme, world, sampling_plan="uniform", **kwargs)
    draw = sample_uniform(
        24, n=kwargs.get("sampling_budget"), fraction=kwargs.get("sampling_fraction"), seed=11
    )
    _expect(campaign, world, draw)
    assert draw.size == n
    assert list(_items(campaign).values()) == pytest.approx([n / 24] * n)
    assert campaign.sampling["budget"] == kwargs.get("sampling_budget")
    assert campaign.sampling["fraction"] == kwargs.get("sampling_fraction")


def _cells(world) -> np.ndarray:
    pairs = [(o.endpoint_id, o.prompt.group_id) for o in world["outputs"]]
    number = {pair: i for i, pair in enumerate(sorted(set(pairs)))}
    return np.array([number[pair] for pair in pairs])


@pytest.mark.parametrize("per_cell", [2, 9])
def test_stratified_plan_draws_n_per_model_and_group(default_scheme, world, per_cell):
    campaign = _create(default_scheme, world, sampling_plan="stratified", sampling_per_cell=per_cell)
    draw = sample_stratified(_cells(world), n_per_cell=per_cell, seed=11)
    _expect(campaign, world, draw)
    cells = {}
    for item in campaign.items.select_related("prompt"):
        cells[(item.endpoint_id, item.prompt.group_id)] = (
            cells.get((item.endpoint_id, item.prompt.group_id), 0) + 1
        )
    assert sorted(cells.values()) == [min(per_cell, 6)] * 4  # 4 cells of 6 outputs, capped at the cell
    assert list(_items(campaign).values()) == pytest.approx([min(per_cell, 6) / 6] * 4 * min(per_cell, 6))
    assert (campaign.sampling["per_cell"], campaign.sampling["cells"]) == (per_cell, 4)


def test_active_plan_is_the_pure_poisson_draw_with_its_floor_and_budget(default_scheme, world, judge):
    with CaptureQueriesContext(connection) as queries:
        campaign = _create(
            default_scheme, world, sampling_plan="active", sampling_budget=8, sampling_scorer=judge
        )
    table = f'"{Score._meta.db_table}"'
    assert sum(table in q["sql"] for q in queries.captured_queries) == 1  # one read per 5,000 outputs
    draw = sample_active(
        _probabilities(world, default_scheme), budget=8, uniform_share=DEFAULT_UNIFORM_SHARE, seed=11
    )
    _expect(campaign, world, draw)
    pi = np.array([p for _, p, _ in _frame(campaign)])
    assert pi.sum() == pytest.approx(8)
    assert pi.min() >= DEFAULT_UNIFORM_SHARE * 8 / 24 - 1e-12  # the floor: every output can be drawn
    assert pi.max() > pi.min()  # uncertainty moved the probabilities
    assert campaign.sampling_scorer == judge
    assert campaign.sampling | {"gold_outside": []} == {
        "budget": 8, "fraction": None, "per_cell": None, "uniform_share": DEFAULT_UNIFORM_SHARE,
        "uncertainty": "sqrt_variance", "seed": 11, "population": 24, "cells": None,
        "expected_total": pytest.approx(8), "drawn": draw.size, "scorer_version": "v2", "gold_outside": [],
    }  # fmt: skip
    plan = {"sampling_plan": "active", "sampling_budget": 8, "sampling_scorer": judge}
    shared = _create(default_scheme, world, "s", sampling_uniform_share=1.0, **plan)
    assert [p for _, p, _ in _frame(shared)] == pytest.approx([8 / 24] * 24)  # all floor: uniform Poisson
    if connection.vendor == "postgresql":  # the items' triggers kept the tallies
        from annotations.analysis.selectors import item_rows

        assert sorted(item_rows(campaign.pk, from_tallies=True).as_tuples()) == sorted(
            item_rows(campaign.pk, from_tallies=False).as_tuples()
        )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sampling_plan": "uniform", "sampling_budget": 5},
        {"sampling_plan": "uniform", "sampling_fraction": 0.5},
        {"sampling_plan": "stratified", "sampling_per_cell": 3},
        {"sampling_plan": "active", "sampling_budget": 6},
    ],
)
def test_the_same_selection_plan_and_seed_give_the_same_items_and_probabilities(
    default_scheme, world, judge, kwargs
):
    if kwargs["sampling_plan"] == "active":
        kwargs = {**kwargs, "sampling_scorer": judge}
    first, again = (_create(default_scheme, world, name, seed=5, **kwargs) for name in ("a", "b"))
    assert _items(first) == _items(again)
    assert _frame(first) == _frame(again)
    assert list(first.items.order_by("rank").values_list("output_id", flat=True)) == list(
        again.items.order_by("rank").values_list("output_id", flat=True)
    )
    assert first.sampling == again.sampling
    other = _create(default_scheme, world, "c", seed=6, **kwargs)
    assert [d for *_, d in _frame(other)] != [d for *_, d in _frame(first)]


def test_gold_outside_the_draw_has_probability_one_and_no_drawn_frame_row(default_scheme, world):
    campaign = _create(default_scheme, world, sampling_plan="uniform", sampling_budget=3)
    drawn = [pk for pk, _, is_drawn in _frame(campaign) if is_drawn]
    undrawn = next(pk for pk, _, is_drawn in _frame(campaign) if not is_drawn)
    outside = factories.run_with_outputs(
        world["run"].prompt_set, [factories.endpoint("other")]
    ).outputs.first()
    gold = [{"output": drawn[0], "category": "answer"}, {"output": undrawn, "category": "answer"}]
    gold.append({"output": outside.pk, "category": "answer"})
    with_gold = _create(default_scheme, world, "g", sampling_plan="uniform", sampling_budget=3, gold=gold)
    items = _items(with_gold)
    assert items[drawn[0]] == pytest.approx(3 / 24)  # gold the plan drew keeps its probability
    assert items[undrawn] == items[outside.pk] == 1.0
    assert with_gold.items.filter(is_gold=True).count() == 3
    assert with_gold.frame.get(output_id=undrawn).is_drawn is False
    assert not with_gold.frame.filter(output_id=outside.pk).exists()
    assert with_gold.frame.filter(is_drawn=True).count() == with_gold.sampling["drawn"] == 3
    assert with_gold.sampling["gold_outside"] == sorted([undrawn, outside.pk])
    census = _create(default_scheme, world, "all", gold=[{"output": outside.pk, "category": "answer"}])
    assert census.sampling["gold_outside"] == [outside.pk]
    assert census.items.count() == 25


def test_a_selection_sample_is_the_uniform_plan(default_scheme, world):
    select = {**world["selection"], "sample": 5}
    campaign = campaign_create(actor=None, name="s", scheme=default_scheme, selection=select, seed=11)
    assert campaign.sampling_plan == "uniform"
    assert campaign.selection == world["selection"]  # the selection is the population; the draw is the plan
    _expect(campaign, world, sample_uniform(24, n=5, seed=11))
    everything = campaign_create(
        actor=None, name="big", scheme=default_scheme, selection={**select, "sample": 99}, seed=11
    )
    assert everything.items.count() == 24  # larger than the selection: every output, as before
    assert set(_items(everything).values()) == {1.0}


def _inactive(default_scheme):
    return scorer(default_scheme, name="old", is_active=False)


def _foreign(default_scheme):
    from annotations.models import LabelCategory, LabelScheme

    other = LabelScheme.objects.create(key="other", name="Other")
    LabelCategory.objects.create(scheme=other, key="yes", name="Yes", definition="-", shortcut="1", order=1)
    return scorer(other, name="foreign")


BAD = [
    ({"sampling_plan": "census"}, "sampling_plan", "must be one of"),
    ({"sampling_budget": 3}, "sampling_budget", "the 'all' plan takes no budget"),
    ({"sampling_plan": "uniform"}, "sampling_budget", "exactly one of"),
    (
        {"sampling_plan": "uniform", "sampling_budget": 3, "sampling_fraction": 0.5},
        "sampling_budget",
        "exactly one",
    ),
    ({"sampling_plan": "uniform", "sampling_budget": 0}, "sampling_budget", "at least 1"),
    ({"sampling_plan": "uniform", "sampling_budget": 25}, "sampling_budget", "at most the population's 24"),
    ({"sampling_plan": "uniform", "sampling_fraction": 0}, "sampling_fraction", "above 0 and at most 1"),
    ({"sampling_plan": "uniform", "sampling_fraction": 1.5}, "sampling_fraction", "above 0 and at most 1"),
    ({"sampling_plan": "uniform", "sampling_fraction": 0.01}, "sampling_fraction", "picked none of the 24"),
    (
        {"sampling_plan": "uniform", "sampling_budget": 3, "sampling_per_cell": 1},
        "sampling_per_cell",
        "takes no",
    ),
    ({"sampling_plan": "stratified"}, "sampling_per_cell", "needs the number of outputs"),
    ({"sampling_plan": "stratified", "sampling_per_cell": 0}, "sampling_per_cell", "at least 1"),
    (
        {"sampling_plan": "stratified", "sampling_per_cell": 2, "sampling_budget": 3},
        "sampling_budget",
        "takes no",
    ),
    ({"sampling_plan": "active", "sampling_scorer": "judge"}, "sampling_budget", "needs a budget"),
    ({"sampling_plan": "active", "sampling_budget": 3}, "sampling_scorer", "needs the scorer"),
    (
        {"sampling_plan": "active", "sampling_budget": 30, "sampling_scorer": "judge"},
        "sampling_budget",
        "at most",
    ),
    (
        {
            "sampling_plan": "active",
            "sampling_budget": 3,
            "sampling_scorer": "judge",
            "sampling_uniform_share": 0,
        },
        "sampling_uniform_share",
        "above 0",
    ),
    (
        {"sampling_plan": "active", "sampling_budget": 3, "sampling_scorer": "old"},
        "sampling_scorer",
        "not active",
    ),
    (
        {"sampling_plan": "active", "sampling_budget": 3, "sampling_scorer": "foreign"},
        "sampling_scorer",
        "'other'",
    ),
    (
        {"sampling_plan": "active", "sampling_budget": 3, "sampling_scorer": "xstest"},
        "sampling_scorer",
        "a string match",
    ),
    ({"sampling_plan": "uniform", "sampling_budget": 3, "seed": -1}, "seed", "non-negative"),
    (
        {"sampling_plan": "uniform", "sampling_budget": 3, "sample": 4},
        "selection.sample",
        "a sample is the uniform",
    ),
]


@pytest.mark.parametrize(("kwargs", "field", "message"), BAD, ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD)])
def test_every_refusal_names_the_field_and_writes_nothing(  # noqa: PLR0917 (fixtures and parameters)
    default_scheme, world, judge, kwargs, field, message
):
    scorers = {
        "judge": judge,
        "old": _inactive(default_scheme),
        "foreign": _foreign(default_scheme),
        "xstest": scorer(default_scheme, kind=Scorer.Kind.STRING_MATCH, name="xstest"),
    }
    kwargs = {k: scorers[v] if k == "sampling_scorer" else v for k, v in kwargs.items()}
    selection = world["selection"]
    if "sample" in kwargs:
        selection = {**selection, "sample": kwargs.pop("sample")}
    kwargs.setdefault("seed", 11)
    with pytest.raises(AuditError) as info:
        campaign_create(actor=None, name="x", scheme=default_scheme, selection=selection, **kwargs)
    assert [e["field"] for e in info.value.errors] == [field]
    assert message in info.value.errors[0]["message"], info.value.message
    assert info.value.message.startswith(f"{field}: ")
    assert not Campaign.objects.exists()
    assert not CampaignItem.objects.exists()
    assert not CampaignFrameOutput.objects.exists()
    assert not AuditEvent.objects.filter(action="campaign.create").exists()


def test_an_active_plan_needs_the_current_version_to_have_scored_every_output(default_scheme, world, judge):
    outputs = world["outputs"]
    Score.objects.filter(scorer=judge, scorer_version="v2", output__in=outputs[:2]).update(status="failed")
    Score.objects.filter(scorer=judge, scorer_version="v2", output=outputs[2]).update(probabilities={})
    Score.objects.filter(scorer=judge, scorer_version="v2", output=outputs[3]).update(
        probabilities={"answer": 0.2}  # does not sum to 1
    )
    Score.objects.filter(scorer=judge, scorer_version="v2", output=outputs[4]).delete()
    with pytest.raises(AuditError) as info:
        _create(default_scheme, world, sampling_plan="active", sampling_budget=5, sampling_scorer=judge)
    assert info.value.errors == [
        {
            "row": None,
            "field": "sampling_scorer",
            "message": "run the scorer first: 5 of 24 outputs have no probabilities from 'judge' @v2",
        }
    ]
    Scorer.objects.filter(pk=judge.pk).update(version="v3")  # a changed scorer: none of its scores count
    judge.refresh_from_db()
    with pytest.raises(AuditError, match="24 of 24 outputs have no probabilities from 'judge' @v3"):
        _create(default_scheme, world, sampling_plan="active", sampling_budget=5, sampling_scorer=judge)
    assert not Campaign.objects.exists()


@pytest.mark.parametrize("field", [*SAMPLING_FIELDS, "sampling"])
def test_update_refuses_any_change_to_the_plan(default_scheme, world, field):
    campaign = _create(default_scheme, world, sampling_plan="uniform", sampling_budget=4)
    with pytest.raises(AuditError) as info:
        campaign_update(actor=None, campaign=campaign, name="renamed", **{field: None})
    assert [e["field"] for e in info.value.errors] == [field]
    assert "fixed when the campaign is created" in info.value.message
    assert Campaign.objects.get(pk=campaign.pk).name == "c"


def test_delete_removes_the_frame_with_the_items(default_scheme, world):
    campaign = _create(default_scheme, world, sampling_plan="stratified", sampling_per_cell=1)
    campaign_delete(actor=None, campaign=campaign)
    assert not CampaignFrameOutput.objects.exists()
    assert not Campaign.objects.exists()
