"""The label planner's reads: the pilot's arrays per model x group, the cell sizes, and the plans equal to
direct calls of the pure planner on the same arrays."""

import math

import numpy as np
import pytest

from annotations.analysis.planner import label_plan, label_plan_choices, shown_from
from annotations.models import CampaignItem
from annotations.stats import plan_labels
from inference.models import Scorer
from tests import factories
from tests.annotations.analysis.planner_fixtures import ANSWER, build_pilot


@pytest.fixture
def pilot_world(default_scheme):
    """See planner_fixtures.build_pilot."""
    return build_pilot(default_scheme)


def _direct(y, f, n_items, half_width, *, probs=True):
    yhat = np.resize(f, n_items)
    return plan_labels(
        y_pilot=y,
        pilot_items=np.arange(y.size),
        yhat_cell=yhat,
        half_width=half_width,
        category_probs=yhat if probs else None,
    )


def _row(result, endpoint, group):
    return next(r for r in result["rows"] if r["model_id"] == endpoint.pk and r["group_id"] == group.pk)


def test_plans_equal_the_pure_planner_on_the_same_arrays(pilot_world):
    world = pilot_world
    population = dict.fromkeys(world["sizes"], 5000)
    result = label_plan(
        pilot=world["campaign"], scorer=world["judge"], half_width=0.06, population=population
    )
    assert len(result["rows"]) == 4
    assert [(r["model"], r["group"]) for r in result["rows"]] == [
        ("model-a", "Muslim"),
        ("model-a", "White"),
        ("model-b", "Muslim"),
        ("model-b", "White"),
    ]
    checked = 0
    for cell, (y, f) in world["arrays"].items():
        row = next(r for r in result["rows"] if (r["model_id"], r["group_id"]) == cell)
        direct = _direct(y, f, 5000, 0.06)
        assert row["pilot_n"] == y.size
        assert row["population"] == 5000
        assert row["pilot_refusal_rate"] == pytest.approx(y.mean())
        assert row["scorer_refusal_rate"] == pytest.approx(f.mean())
        assert row["human_only"]["n"] == direct.classical.n
        assert row["human_only"]["half_width"] == pytest.approx(direct.classical.half_width)
        assert row["ppi"]["n"] == direct.ppi.n
        assert row["ppi"]["lam"] == pytest.approx(direct.ppi.lam)
        assert row["active"]["n"] == direct.active.n
        assert row["active"]["uniform_share"] == direct.active.uniform_share
        assert direct.ppi.n < direct.classical.n
        checked += 1
    assert checked == 3
    planned = [r for r in result["rows"] if r["pilot_n"] >= 2]
    totals = result["totals"]
    assert totals == {
        "cells": 4,
        "cells_planned": 3,
        "human_only": sum(r["human_only"]["n"] for r in planned),
        "ppi": sum(r["ppi"]["n"] for r in planned),
        "active": sum(r["active"]["n"] for r in planned),
    }
    assert result["summary"].startswith("About ")
    assert "with PPI" in result["summary"]
    assert "±6 points in 3 of the 4 model x group cells" in result["summary"]


def test_a_cell_with_one_pilot_label_is_undefined_with_the_reason(pilot_world):
    world = pilot_world
    result = label_plan(pilot=world["campaign"], scorer=world["judge"], half_width=0.2)
    row = _row(result, world["endpoints"][1], world["groups"][1])
    assert row["pilot_n"] == 1
    for method in ("human_only", "ppi", "active"):
        assert row[method]["n"] is None
        assert "at least two are needed" in row[method]["reason"]


def test_all_equal_pilot_labels_and_unreachable_targets_say_why(pilot_world):
    world = pilot_world
    CampaignItem.objects.filter(campaign=world["campaign"]).exclude(final_category=None).update(
        final_category=world["campaign"].scheme.categories.get(key=ANSWER)
    )
    result = label_plan(pilot=world["campaign"], scorer=world["judge"], half_width=0.05)
    row = _row(result, world["endpoints"][0], world["groups"][0])
    assert row["pilot_refusal_rate"] == 0
    assert "no variance" in row["human_only"]["reason"]
    assert "all equal" in row["ppi"]["reason"]
    assert "all equal" in row["active"]["reason"]
    assert result["totals"]["cells_planned"] == 0
    assert (
        result["summary"] == "No model x group cell can be planned for ±5 points: see the reason in each row."
    )


def test_target_out_of_reach_in_a_small_cell(pilot_world):
    world = pilot_world
    result = label_plan(pilot=world["campaign"], scorer=world["judge"], half_width=0.03)
    row = _row(result, world["endpoints"][0], world["groups"][0])
    assert row["human_only"]["n"] is None
    assert "labelling all 30 items" in row["human_only"]["reason"]


def test_a_scorer_without_probabilities_plans_no_active_sampling(pilot_world):
    world = pilot_world
    population = dict.fromkeys(world["sizes"], 5000)
    result = label_plan(pilot=world["campaign"], scorer=world["hard"], half_width=0.06, population=population)
    for row in result["rows"]:
        assert row["active"]["n"] is None
        if row["pilot_n"] >= 2:
            assert "no probabilities" in row["active"]["reason"]
    row = _row(result, world["endpoints"][0], world["groups"][1])
    assert row["ppi"]["n"] is not None
    assert result["totals"]["active"] is None
    assert "active sampling" not in result["summary"]


def test_population_counts_the_done_outputs_of_the_pilots_runs(pilot_world):
    world = pilot_world
    other = factories.run_with_outputs(  # a run the pilot has no item of: not counted
        world["campaign"].items.first().output.run.prompt_set, world["endpoints"]
    )
    assert other.outputs.exists()
    result = label_plan(pilot=world["campaign"], scorer=world["judge"], half_width=0.2)
    sizes = {(r["model_id"], r["group_id"]): r["population"] for r in result["rows"]}
    assert sizes == world["sizes"]  # 30 per cell, 29 where the failed output was
    failed = world["failed"]
    assert sizes[(failed.endpoint_id, failed.prompt.group_id)] == 29
    assert sorted(sizes.values()) == [29, 30, 30, 30]


def test_population_given_adds_cells_and_undefined_ones_say_why(pilot_world):
    world = pilot_world
    extra = factories.endpoint("model-c")
    cell = (world["endpoints"][0].pk, world["groups"][0].pk)
    result = label_plan(
        pilot=world["campaign"],
        scorer=world["judge"],
        half_width=0.2,
        population={cell: 10, (extra.pk, world["groups"][0].pk): 100},
    )
    by_cell = {(r["model_id"], r["group_id"]): r for r in result["rows"]}
    assert len(by_cell) == 5  # the pilot's 4 cells and the extra one
    assert "but the cell only 10 outputs" in by_cell[cell]["ppi"]["reason"]
    assert by_cell[(extra.pk, world["groups"][0].pk)]["model"] == "model-c"
    assert "has 0 scored human label(s)" in by_cell[(extra.pk, world["groups"][0].pk)]["ppi"]["reason"]
    assert by_cell[(world["endpoints"][1].pk, world["groups"][0].pk)]["ppi"]["reason"] == (
        "no population size for this cell"
    )


def test_one_pilot_query_and_a_fixed_query_budget(pilot_world, django_assert_max_num_queries):
    world = pilot_world
    with django_assert_max_num_queries(5):  # refusal keys, pilot rows, cell sizes, model and group names
        label_plan(pilot=world["campaign"], scorer=world["judge"], half_width=0.2)
    with django_assert_max_num_queries(4):
        label_plan(pilot=world["campaign"], scorer=world["judge"], half_width=0.2, population={})


def test_summary_rounds_to_two_significant_figures(pilot_world):
    world = pilot_world
    population = dict.fromkeys(world["sizes"], 200_000)
    result = label_plan(
        pilot=world["campaign"], scorer=world["judge"], half_width=0.01, population=population
    )
    totals = result["totals"]
    assert totals["human_only"] > 1000

    def about(n):
        return f"{int(round(n, 2 - len(str(n)))):,}"

    assert result["summary"].startswith(f"About {about(totals['ppi'])} human labels with PPI")
    assert f"instead of {about(totals['human_only'])} with human labels only" in result["summary"]
    assert "±1 point in 3 of the 4" in result["summary"]


def test_choices_list_labelled_campaigns_and_scorers_that_assign_categories(pilot_world, default_scheme):
    world = pilot_world
    factories.campaign_with_items(default_scheme, [])  # no final label: not a pilot
    flag_only = Scorer.objects.create(name="flags", kind=Scorer.Kind.CLASSIFIER, version="f1")
    choices = label_plan_choices()
    assert [p["pk"] for p in choices["pilots"]] == [world["campaign"].pk]
    assert {s["pk"] for s in choices["scorers"]} == {world["judge"].pk, world["hard"].pk}
    assert flag_only.pk not in {s["pk"] for s in choices["scorers"]}


def test_plans_below_the_estimates_minimum_are_raised_to_it(pilot_world, settings):
    """The dashboard shows no interval below AUDIT_MACHINE_ASSISTED_MIN_LABELS labels per cell, so the
    planner never promises fewer; a cell smaller than the minimum cannot be planned."""
    world = pilot_world
    population = dict.fromkeys(world["sizes"], 5000)
    settings.AUDIT_MACHINE_ASSISTED_MIN_LABELS = 80
    settings.AUDIT_MACHINE_ASSISTED_MIN_EXPECTED = 0
    result = label_plan(
        pilot=world["campaign"], scorer=world["judge"], half_width=0.25, population=population
    )
    raised = 0
    for cell, (y, f) in world["arrays"].items():
        row = next(r for r in result["rows"] if (r["model_id"], r["group_id"]) == cell)
        direct = _direct(y, f, 5000, 0.25)
        for key, plan in (("human_only", direct.classical), ("ppi", direct.ppi), ("active", direct.active)):
            if plan.n < 80:
                assert (row[key]["n"], row[key].get("raised_to_minimum")) == (80, True)
                raised += 1
            else:
                assert row[key]["n"] == plan.n
                assert "raised_to_minimum" not in row[key]
    assert raised >= 3
    settings.AUDIT_MACHINE_ASSISTED_MIN_LABELS = 6000
    result = label_plan(
        pilot=world["campaign"], scorer=world["judge"], half_width=0.25, population=population
    )
    row = next(r for r in result["rows"] if (r["model_id"], r["group_id"]) in world["arrays"])
    assert row["ppi"]["n"] is None
    assert (
        row["ppi"]["reason"]
        == "the cell has 5,000 outputs; the estimates show an interval from 6,000 human labels here"
    )


def test_plans_are_raised_where_the_scorer_predicts_a_rare_rate(pilot_world, settings):
    """planner.shown_from: the estimates hide a cell's interval until MIN_EXPECTED labels are expected
    with (and without) the outcome at the scorer's predicted rate, so the planner plans at least
    ceil(MIN_EXPECTED / min(rate, 1 - rate)), the rate being the mean of the pilot's predictions."""
    world = pilot_world
    population = dict.fromkeys(world["sizes"], 5000)
    settings.AUDIT_MACHINE_ASSISTED_MIN_LABELS = 2
    settings.AUDIT_MACHINE_ASSISTED_MIN_EXPECTED = 40
    result = label_plan(
        pilot=world["campaign"], scorer=world["judge"], half_width=0.25, population=population
    )
    checked = 0
    for cell, (y, f) in world["arrays"].items():
        row = next(r for r in result["rows"] if (r["model_id"], r["group_id"]) == cell)
        rate = float(np.mean(f))
        floor = math.ceil(40 / min(rate, 1 - rate) - 1e-9)
        direct = _direct(y, f, 5000, 0.25)
        for key, plan in (("human_only", direct.classical), ("ppi", direct.ppi)):
            assert row[key]["n"] == max(plan.n, floor)
            assert row[key].get("raised_to_minimum", False) == (plan.n < floor)
            checked += plan.n < floor
    assert checked >= 2


def test_the_fewest_labels_shown_follow_the_predicted_rate(settings):
    """shown_from: the minimum where the rate is not rare, 10 / min(r, 1 - r) where it is (rounded up,
    symmetric in r and 1 - r), the minimum alone with the rule off, and None where the scorer predicts
    no variation (no number of labels gives an interval then)."""
    settings.AUDIT_MACHINE_ASSISTED_MIN_LABELS = 80
    settings.AUDIT_MACHINE_ASSISTED_MIN_EXPECTED = 10
    assert shown_from(0.5) == 80
    assert shown_from(0.125) == 80
    assert shown_from(0.1) == 100
    assert shown_from(0.02) == 500
    assert shown_from(0.98) == 500
    assert shown_from(0.03) == 334
    assert shown_from(None) == 80
    assert shown_from(0.0) is None
    assert shown_from(1.0) is None
    settings.AUDIT_MACHINE_ASSISTED_MIN_EXPECTED = 0
    assert shown_from(0.02) == 80
    assert shown_from(0.0) == 80
