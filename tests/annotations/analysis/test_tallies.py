"""The dashboard tallies kept by PostgreSQL triggers equal a GROUP BY over the items, whatever wrote them."""

from collections import Counter

import pytest
from django.db import connection

from annotations.analysis.report import dashboard_report
from annotations.analysis.selectors import StatsFilters, item_rows, label_set_rows
from annotations.analysis.tallies import tallies_rebuild
from annotations.labelling.campaigns import campaign_create, campaign_delete
from annotations.labelling.services import (
    assignment_next,
    item_adjudicate,
    items_refresh,
    label_change,
    label_submit,
)
from annotations.models import CampaignItem, CampaignItemTally, Label, LabelSetTally
from tests import factories
from tests.annotations.analysis.dashboard_fixtures import build_campaign

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("the tallies are kept by PostgreSQL triggers (set DATABASE_URL)")


def _same(campaign_id: int, **filters) -> None:
    """Tallies and the direct GROUP BY give the same item rows and label sets (as multisets)."""
    tallied = item_rows(campaign_id, from_tallies=True).as_tuples()
    assert tallied
    assert sorted(tallied) == sorted(item_rows(campaign_id, from_tallies=False).as_tuples())
    stats_filters = StatsFilters(campaign=campaign_id, **filters)
    assert _summed(label_set_rows(stats_filters, from_tallies=True).as_tuples()) == _summed(
        label_set_rows(stats_filters, from_tallies=False).as_tuples()
    )


def _summed(rows: list[tuple]) -> Counter:
    """Items per key (the last column counts items; one key may come in several rows, e.g. per run)."""
    total = Counter()
    for *key, n in rows:
        total[tuple(key)] += n
    return total


@pytest.fixture
def outputs():
    return factories.two_model_outputs()


def test_labelling_changing_adjudicating_and_deleting_keep_the_tallies(
    default_scheme, outputs, make_user, researcher
):
    people = [make_user("annotator", f"ann{i}") for i in range(3)]
    campaign = campaign_create(
        actor=researcher,
        name="tallied",
        scheme=default_scheme,
        selection={"runs": [outputs[0].run_id]},
        annotators=people,
        gold=[{"output": outputs[0].pk, "category": "answer"}],
        seed=3,
    )
    assert CampaignItemTally.objects.filter(campaign=campaign).values_list("n", flat=True)[0] >= 1
    _same(campaign.pk)
    for round_ in range(2):
        for i, user in enumerate(people):
            lease = assignment_next(campaign=campaign, annotator=user)
            key = "answer" if (i + round_) % 2 else "refusal-to-answer"
            label_submit(campaign=campaign, annotator=user, item_id=lease.item_id, category_key=key)
            _same(campaign.pk)
    label = Label.objects.filter(item__campaign=campaign).order_by("pk").first()
    label_change(
        campaign=campaign, annotator=label.annotator, item_id=label.item_id, category_key="harmful-answer"
    )
    _same(campaign.pk)
    disputed = CampaignItem.objects.filter(campaign=campaign, status="disputed").first()
    item_adjudicate(
        campaign=campaign, adjudicator=researcher, item_id=disputed.pk, category_key="answer", reason="ok"
    )
    _same(campaign.pk)
    prompt = outputs[0].prompt
    for filters in (
        {"model": outputs[0].endpoint_id},
        {"run": outputs[0].run_id},
        {"group": prompt.group_id},
        {"axis": prompt.group.axis_id},
        {"group": 10**9},
    ):
        _same(campaign.pk, **filters)
    assert sum(CampaignItemTally.objects.filter(campaign=campaign).values_list("n", flat=True)) == len(
        outputs
    )
    labelled = CampaignItem.objects.filter(campaign=campaign).exclude(label_signature="").count()
    assert sum(LabelSetTally.objects.filter(campaign=campaign).values_list("n", flat=True)) == labelled

    # items written around the services: the refresh (and its trigger) and a rebuild bring tallies back
    CampaignItem.objects.filter(campaign=campaign).update(label_signature="", label_pattern="")
    _same(campaign.pk)  # the triggers followed even this bulk update
    items_refresh(item_ids=CampaignItem.objects.filter(campaign=campaign).values_list("pk", flat=True))
    _same(campaign.pk)
    CampaignItemTally.objects.filter(campaign=campaign).update(n=99)  # drift, e.g. a restored backup
    tallies_rebuild(campaign_id=campaign.pk)
    _same(campaign.pk)

    empty = campaign_create(
        actor=researcher, name="empty", scheme=default_scheme, selection={"runs": [outputs[0].run_id]}, seed=4
    )
    assert sum(CampaignItemTally.objects.filter(campaign=empty).values_list("n", flat=True)) == len(outputs)
    campaign_delete(actor=researcher, campaign=empty)
    assert not CampaignItemTally.objects.filter(campaign_id=empty.pk).exists()


def test_dashboard_report_is_the_same_from_tallies_and_from_items(default_scheme, make_user, monkeypatch):
    campaign, _, _ = build_campaign(default_scheme, make_user)
    from annotations.analysis import selectors as stats

    from_tallies = dashboard_report(filters=StatsFilters(campaign=campaign.pk), n_resamples=50, seed=1)
    monkeypatch.setattr(stats, "use_tallies", lambda: False)
    from_items = dashboard_report(filters=StatsFilters(campaign=campaign.pk), n_resamples=50, seed=1)
    assert from_tallies == from_items
    assert from_tallies["summary"]["labels"] == 26
