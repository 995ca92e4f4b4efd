"""Selectors and the dashboard report against a small campaign computed by hand (dashboard_fixtures.py)."""

import math

import krippendorff
import numpy as np
import pytest
from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss

from annotations.analysis.report import ALL_MODELS, dashboard_report
from annotations.analysis.selectors import (
    StatsFilters,
    campaign_arrays,
    stats_filters_parse,
    stats_resamples_parse,
)
from annotations.core.exceptions import AuditError, NotFoundError
from annotations.models import CampaignItem, Group, PromptTemplate
from inference.models import ModelEndpoint
from tests.annotations.analysis.dashboard_fixtures import LABELS, H, R, build_campaign

pytestmark = pytest.mark.django_db
Z = 1.959964


def _wilson(x: int, n: int) -> tuple[float, float]:
    """Textbook Wilson score interval (Wilson 1927), written out independently of the code under test."""
    p = x / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z / (1 + Z * Z / n) * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


@pytest.fixture
def campaign(default_scheme, make_user):
    campaign, _, _ = build_campaign(default_scheme, make_user)
    return campaign


def _rows(report: dict, table: str, **match) -> list[dict]:
    return [r for r in report["tables"][table]["rows"] if all(r[k] == v for k, v in match.items())]


def _reliability(keys) -> np.ndarray:
    """The krippendorff package's layout: raters x items, nan = missing, codes = scheme order."""
    order = ["answer", "partial-answer", "failure-to-answer", R, H, "harmful-answer"]
    return np.array(
        [[np.nan if LABELS[k][r] is None else order.index(LABELS[k][r]) for k in keys] for r in range(3)]
    )


def test_item_rows_and_label_sets_match_the_labels(campaign, default_scheme):
    """Expanded by their weights, the item rows and label sets are exactly the fixture's items and labels."""
    data = campaign_arrays(filters=StatsFilters(campaign=campaign.pk))
    categories = [c.key for c in default_scheme.categories.order_by("order")]
    assert data.models == ("llama-7b", "llama-13b")  # in the order the endpoints were created
    assert data.groups == ("White", "Muslim")  # the control group first
    assert {m.name for m in data.members} == {"Mohammed", "Fatima", "John"}
    assert data.annotators == ("ann1", "ann2", "ann3")
    assert data.n_items == 12
    assert data.item_weight.min() >= 1

    def item_key(model, template, member, codes):
        return (model, template, member, tuple(codes))

    expected_items, expected_sets = [], []
    for (model, template, member), labels in LABELS.items():
        counts = [sum(1 for x in labels if x == c) for c in categories]
        expected_items.append(item_key(model, template, member, counts))
        group = "White" if member == "John" else "Muslim"
        expected_sets.append((model, group, tuple(-1 if x is None else categories.index(x) for x in labels)))
    got_items = []
    for r in range(data.counts.shape[0]):
        key = item_key(
            data.models[data.item_model[r]],
            data.templates[data.item_template[r]],
            data.members[data.item_member[r]].name,
            data.counts[r].tolist(),
        )
        got_items += [key] * int(data.item_weight[r])
    assert sorted(got_items) == sorted(expected_items)
    got_sets = []
    for s_ in range(data.set_counts.shape[0]):
        codes = [-1, -1, -1]
        for j in np.flatnonzero(data.label_set == s_):
            codes[data.label_annotator[j]] = int(data.label_code[j])
        key = (data.models[data.set_model[s_]], data.groups[data.set_group[s_]], tuple(codes))
        got_sets += [key] * int(data.set_weight[s_])
        np.testing.assert_array_equal(
            data.set_counts[s_], np.bincount([c for c in codes if c >= 0], minlength=6)
        )
    assert sorted(got_sets) == sorted(expected_sets)


def _item_lookup(key):
    model, template, member = key
    return {
        "output__endpoint__name": model,
        "output__prompt__template__key": template,
        "output__prompt__member__value": member,
    }


def test_final_labels_adjudicated_else_unanimous(campaign):
    report = dashboard_report(filters=StatsFilters(campaign=campaign.pk))
    s = report["summary"]
    assert s["items_with_final_label"] == 10  # 12 minus the undecided H/R/R item and the A/P tie
    assert s["items_awaiting_adjudication"] == 2
    assert s["adjudicated_items"] == 1
    muslim_7b = _rows(report, "rates", model="llama-7b", group="Muslim")[0]
    assert (muslim_7b["n"], muslim_7b["refusals"]) == (3, 2)  # R, R (adjudicated), A
    cell = muslim_7b["refusal_rate"]
    assert cell["value"] == pytest.approx(2 / 3)
    assert (cell["ci_low"], cell["ci_high"]) == pytest.approx(_wilson(2, 3), abs=1e-9)
    white_13b = _rows(report, "rates", model="llama-13b", group="White")[0]
    assert (white_13b["n"], white_13b["refusals"]) == (1, 0)
    pooled = _rows(report, "rates", model=ALL_MODELS, group="Muslim")[0]
    assert (pooled["n"], pooled["refusals"]) == (7, 4)


def test_majority_rule_resolves_from_label_counts(default_scheme, make_user):
    campaign, _, _ = build_campaign(default_scheme, make_user, final_rule="majority")
    report = dashboard_report(filters=StatsFilters(campaign=campaign.pk))
    muslim_7b = _rows(report, "rates", model="llama-7b", group="Muslim")[0]
    assert (muslim_7b["n"], muslim_7b["refusals"]) == (4, 3)  # H/R/R -> R by majority
    assert report["summary"]["items_awaiting_adjudication"] == 1  # the A/P tie goes to adjudication
    assert report["final_rule"] == "majority"


def test_stored_final_category_wins(campaign, default_scheme):
    item = CampaignItem.objects.get(campaign=campaign, **_item_lookup(("llama-13b", "plane", "John")))
    item.final_category = default_scheme.categories.get(key=R)
    item.final_source = CampaignItem.FinalSource.ADJUDICATED
    item.save()
    report = dashboard_report(filters=StatsFilters(campaign=campaign.pk))
    white_13b = _rows(report, "rates", model="llama-13b", group="White")[0]
    assert (white_13b["n"], white_13b["refusals"]) == (2, 1)
    # the dashboard reads the stored final labels: the fixture's 10, and this one
    assert report["summary"]["items_with_final_label"] == 11


def test_all_individual_labels_source(campaign):
    report = dashboard_report(filters=StatsFilters(campaign=campaign.pk, source="all"))
    muslim_7b = _rows(report, "rates", model="llama-7b", group="Muslim")[0]
    assert (muslim_7b["n"], muslim_7b["refusals"]) == (9, 6)
    white_13b = _rows(report, "rates", model="llama-13b", group="White")[0]
    assert (white_13b["n"], white_13b["refusals"]) == (4, 0)
    harmful = muslim_7b["rate_harmful-refusal"]
    assert harmful["value"] == pytest.approx(1 / 9)
    assert report["label_source"]["key"] == "all"


def test_filters_narrow_every_table(campaign):
    model = ModelEndpoint.objects.get(name="llama-7b")
    template = PromptTemplate.objects.get(key="plane")
    report = dashboard_report(
        filters=StatsFilters(campaign=campaign.pk, model=model.pk, template=template.pk)
    )
    assert report["models"] == ["llama-7b"]
    assert {r["model"] for r in report["tables"]["rates"]["rows"]} == {"llama-7b"}
    assert report["summary"]["items_in_filter"] == 3
    muslim = Group.objects.get(name="Muslim")
    report = dashboard_report(filters=StatsFilters(campaign=campaign.pk, group=muslim.pk))
    assert report["groups"] == ["Muslim"]
    assert report["summary"]["items_in_filter"] == 8
    report = dashboard_report(filters=StatsFilters(campaign=campaign.pk, axis=muslim.axis_id))
    assert report["summary"]["items_in_filter"] == 12
    run_id = CampaignItem.objects.filter(campaign=campaign).values_list("output__run_id", flat=True)[0]
    report = dashboard_report(filters=StatsFilters(campaign=campaign.pk, run=run_id + 1000))
    assert report["summary"]["items_in_filter"] == 0


def test_disparity_tests_and_pairs(campaign):
    from scipy.stats import fisher_exact

    report = dashboard_report(filters=StatsFilters(campaign=campaign.pk))
    test = _rows(report, "tests", model="llama-7b", outcome="refusal")[0]
    assert test["test"] == "fisher-exact"  # expected counts are tiny
    # rows White (0 of 2), Muslim (2 of 3)
    assert test["p_value"] == pytest.approx(fisher_exact([[0, 2], [2, 1]]).pvalue)
    assert test["max_min_ratio"]["value"] is None
    assert test["max_min_ratio"]["reason"] == "the lowest rate is 0"
    pair = _rows(report, "pairwise", model="llama-7b")[0]
    assert (pair["group_a"], pair["group_b"]) == ("White", "Muslim")
    assert pair["difference"]["value"] == pytest.approx(0 - 2 / 3)
    assert pair["p_holm"] == pytest.approx(pair["p_value"])  # one comparison: Holm changes nothing
    stratified = report["tables"]["stratified"]["rows"]
    assert [r["comparison"] for r in stratified][:2] == [
        "White vs all other groups",
        "Muslim vs all other groups",
    ]
    assert stratified[0]["strata"] == "2 used, 0 dropped"
    assert stratified[-1]["method"].startswith("logistic regression")


def test_drilldowns_and_counterfactual_consistency(campaign):
    report = dashboard_report(filters=StatsFilters(campaign=campaign.pk))
    gaps = _rows(report, "template_gaps", model="llama-7b")
    assert gaps[0]["template"] == "plane"  # Muslim 2/2 refused, White 0/1
    assert gaps[0]["gap"]["value"] == pytest.approx(1.0)
    assert (gaps[0]["max_group"], gaps[0]["min_group"]) == ("Muslim", "White")
    assert gaps[1]["gap"]["value"] == pytest.approx(0.0)
    pair = _rows(report, "consistency_pairs", model="llama-7b", template="plane")[0]
    assert pair["change"] == pytest.approx(1.0)  # every Muslim output refused, the White one answered
    groups = _rows(report, "consistency_groups", model="llama-7b")[0]
    assert groups["mean_change"] == pytest.approx(0.5)  # plane: 1, shop: 0
    assert groups["n_templates"] == 2
    mohammed = _rows(report, "members", model="llama-7b", member="Mohammed")[0]
    assert (mohammed["n"], mohammed["refusal_rate"]["value"]) == (1, 1.0)  # shop has no final label
    template = _rows(report, "templates", model="llama-13b", template="shop", group="Muslim")[0]
    assert template["refusal_rate"]["value"] == pytest.approx(0.5)


def test_agreement_matches_independent_implementations(campaign):
    report = dashboard_report(filters=StatsFilters(campaign=campaign.pk), n_resamples=200, seed=1)
    whole = _rows(report, "agreement", scope="campaign")[0]
    expected = krippendorff.alpha(reliability_data=_reliability(list(LABELS)), level_of_measurement="nominal")
    assert whole["alpha"]["value"] == pytest.approx(expected, abs=1e-12)
    assert whole["alpha"]["ci_low"] < whole["alpha"]["value"] < whole["alpha"]["ci_high"]
    assert (whole["items"], whole["ratings"]) == (12, 26)
    assert whole["fleiss"]["value"] is None
    assert "same number of ratings" in whole["fleiss"]["reason"]
    keys_7b = [k for k in LABELS if k[0] == "llama-7b"]
    model_7b = _rows(report, "agreement", scope="model", name="llama-7b")[0]
    assert model_7b["alpha"]["value"] == pytest.approx(
        krippendorff.alpha(reliability_data=_reliability(keys_7b), level_of_measurement="nominal"), abs=1e-12
    )
    model_13b = _rows(report, "agreement", scope="model", name="llama-13b")[0]
    counts_13b = _counts([k for k in LABELS if k[0] == "llama-13b"])
    assert model_13b["fleiss"]["value"] == pytest.approx(statsmodels_fleiss(counts_13b), abs=1e-12)


def _counts(keys) -> np.ndarray:
    order = ["answer", "partial-answer", "failure-to-answer", R, H, "harmful-answer"]
    counts = np.zeros((len(keys), 6), dtype=int)
    for i, key in enumerate(keys):
        for label in LABELS[key]:
            if label is not None:
                counts[i, order.index(label)] += 1
    return counts


def test_pairwise_kappa_and_consensus_by_hand(campaign):
    report = dashboard_report(filters=StatsFilters(campaign=campaign.pk))
    pair = _rows(report, "pairwise_kappa", scope="campaign", annotator_a="ann1", annotator_b="ann2")[0]
    # 6 shared items, 4 agree; marginals ann1 R2 A3 H1, ann2 R2 A4: p_e = 16/36
    assert pair["shared"] == 6
    assert pair["agreement"]["value"] == pytest.approx(4 / 6)
    assert pair["kappa"]["value"] == pytest.approx((4 / 6 - 16 / 36) / (1 - 16 / 36))
    perfect = _rows(report, "pairwise_kappa", scope="campaign", annotator_a="ann2", annotator_b="ann3")[0]
    assert (perfect["shared"], perfect["kappa"]["value"]) == (5, 1.0)
    consensus = _rows(report, "annotator_consensus", scope="campaign", annotator="ann3")[0]
    # ann3 rated 8 items; the others' (single) label is the consensus on each
    assert consensus["compared"] + consensus["no_consensus"] == 8


def test_undefined_values_carry_a_reason(campaign):
    white = Group.objects.get(name="White")
    model = ModelEndpoint.objects.get(name="llama-7b")
    report = dashboard_report(filters=StatsFilters(campaign=campaign.pk, group=white.pk, model=model.pk))
    alpha = _rows(report, "agreement", scope="campaign")[0]["alpha"]
    assert alpha["value"] is None  # every label is "answer"
    assert "one category" in alpha["reason"]
    test = _rows(report, "tests", outcome="refusal")[0]
    assert test["p_value"] is None
    assert test["reason"]


def test_annotator_progress_and_gold_accuracy(campaign, default_scheme):
    for key, category in ((("llama-7b", "plane", "John"), "answer"), (("llama-7b", "plane", "Fatima"), R)):
        item = CampaignItem.objects.get(campaign=campaign, **_item_lookup(key))
        item.is_gold = True
        item.gold_category = default_scheme.categories.get(key=category)
        item.save()
    report = dashboard_report(filters=StatsFilters(campaign=campaign.pk))
    rows = {r["annotator"]: r for r in report["tables"]["annotators"]["rows"]}
    assert [rows[a]["labels"] for a in ("ann1", "ann2", "ann3")] == [9, 9, 8]
    assert (rows["ann1"]["gold_labelled"], rows["ann1"]["gold_correct"]) == (2, 2)
    assert (rows["ann2"]["gold_labelled"], rows["ann2"]["gold_correct"]) == (2, 1)
    assert rows["ann2"]["gold_accuracy"]["value"] == pytest.approx(0.5)
    assert rows["ann3"]["gold_accuracy"] == {
        "value": None,
        "reason": "no gold item labelled",
        "n": 0,
        "ci_low": None,
        "ci_high": None,
    }
    assert report["summary"]["gold_items"] == 2


def test_assigned_annotator_without_labels_is_listed(campaign, make_user):
    idle = make_user("annotator", "idle")
    campaign.annotators.add(idle)
    report = dashboard_report(filters=StatsFilters(campaign=campaign.pk))
    row = _rows(report, "annotators", annotator="idle")[0]
    assert (row["labels"], row["gold_accuracy"]["value"]) == (0, None)


def test_filters_parse_errors_name_the_field():
    with pytest.raises(AuditError) as error:
        stats_filters_parse(data={"campaign": "x", "model": "-2", "source": "some"})
    fields = {e["field"] for e in error.value.errors}
    assert fields == {"campaign", "model", "source"}
    with pytest.raises(AuditError, match="campaign is required"):
        stats_filters_parse(data={})
    assert stats_filters_parse(data={"campaign": "3", "group": "4", "source": "all"}) == StatsFilters(
        campaign=3, group=4, source="all"
    )
    with pytest.raises(AuditError, match="bootstrap"):
        stats_resamples_parse(raw="100001")
    assert stats_resamples_parse(raw="") == 1000


def test_missing_campaign_is_not_found():
    with pytest.raises(NotFoundError):
        dashboard_report(filters=StatsFilters(campaign=999_999))


def test_empty_campaign_gives_undefined_not_zero(default_scheme):
    from annotations.models import Campaign

    campaign = Campaign.objects.create(name="empty", scheme=default_scheme)
    report = dashboard_report(filters=StatsFilters(campaign=campaign.pk))
    alpha = report["tables"]["agreement"]["rows"][0]["alpha"]
    assert alpha["value"] is None
    assert alpha["reason"] == "no item has two or more ratings"
    assert report["tables"]["rates"]["rows"] == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_reads_on_parallel_connections_give_the_same_report(default_scheme, make_user):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the parallel reads run on PostgreSQL only (set DATABASE_URL)")
    campaign, _, _ = build_campaign(default_scheme, make_user)
    assert not connection.in_atomic_block  # so campaign_arrays reads on two connections at once
    report = dashboard_report(filters=StatsFilters(campaign=campaign.pk))
    muslim_7b = _rows(report, "rates", model="llama-7b", group="Muslim")[0]
    assert (muslim_7b["n"], muslim_7b["refusals"]) == (3, 2)
    assert report["summary"]["labels"] == 26
    assert report["summary"]["adjudicated_items"] == 1
