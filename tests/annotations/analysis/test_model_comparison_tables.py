"""The model-to-model tables on the hand-checkable campaign (dashboard_fixtures): numbers by hand."""

import pytest

from annotations.analysis.report import dashboard_report
from annotations.analysis.selectors import StatsFilters
from annotations.stats.disparity import newcombe_difference_interval
from tests.annotations.analysis.dashboard_fixtures import build_campaign

pytestmark = pytest.mark.django_db


def test_changes_between_the_two_models_per_group_with_the_gap_and_the_interaction(default_scheme, make_user):
    """Final labels (adjudicate rule: disputed items without an adjudication have none): llama-7b refuses
    2 of 3 Muslim outputs (Mohammed's shop answer is disputed) and 0 of 2 White; llama-13b 2 of 4
    Muslim and 0 of 1 White (John's plane answer is disputed)."""
    campaign, _, _ = build_campaign(default_scheme, make_user)
    report = dashboard_report(filters=StatsFilters(campaign=campaign.pk), n_resamples=0)
    rows = report["tables"]["model_changes"]["rows"]
    assert {(r["model_a"], r["model_b"]) for r in rows} == {tuple(report["models"])}
    by_group = {r["group"]: r for r in rows}
    a = report["models"][0]
    counts = {
        "llama-7b": {"Muslim": (2, 3), "White": (0, 2)},
        "llama-13b": {"Muslim": (2, 4), "White": (0, 1)},
    }
    first, second = counts[a], counts[report["models"][1]]
    muslim = by_group["Muslim"]
    assert muslim["rate_a"]["value"] == pytest.approx(first["Muslim"][0] / first["Muslim"][1])
    assert muslim["rate_b"]["value"] == pytest.approx(second["Muslim"][0] / second["Muslim"][1])
    low, high = newcombe_difference_interval(*second["Muslim"], *first["Muslim"])
    rate = {name: x / n for name, (x, n) in (("a", first["Muslim"]), ("b", second["Muslim"]))}
    assert muslim["change"]["value"] == pytest.approx(rate["b"] - rate["a"])
    assert (muslim["change"]["ci_low"], muslim["change"]["ci_high"]) == pytest.approx((low, high))
    assert muslim["gap_a"]["value"] == pytest.approx(rate["a"])  # the control refuses none
    assert muslim["gap_change"]["value"] == pytest.approx(rate["b"] - rate["a"])
    assert by_group["White"]["gap_change"]["reason"] == "the control group itself"
    (test,) = report["tables"]["model_interaction"]["rows"]
    assert test["dof"] == 1
    assert test["n"] == 10
    assert test["p_value"] is not None
    # the rates agree with the disparity table's
    rates = {(r["model"], r["group"]): r["refusal_rate"]["value"] for r in report["tables"]["rates"]["rows"]}
    assert rates[(a, "Muslim")] == muslim["rate_a"]["value"]


def test_one_model_gives_no_comparison_rows(default_scheme, make_user, client):
    campaign, _, _ = build_campaign(default_scheme, make_user)
    model = campaign.items.first().output.endpoint_id
    report = dashboard_report(filters=StatsFilters(campaign=campaign.pk, model=model), n_resamples=0)
    assert report["tables"]["model_changes"]["rows"] == []
    assert report["tables"]["model_interaction"]["rows"] == []
    client.force_login(make_user("researcher", "reader"))
    page = client.get(f"/dashboards/?campaign={campaign.pk}&model={model}").content.decode()
    assert 'id="s-models"' in page
    assert "nothing to compare" in page  # the slope chart's title says so
