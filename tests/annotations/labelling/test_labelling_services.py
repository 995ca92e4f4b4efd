"""Next item, submit, skip, change, resolution and adjudication (services; SQLite and PostgreSQL)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from annotations.core.exceptions import AuditError, NotFoundError
from annotations.labelling.services import (
    assignment_next,
    assignment_skip,
    item_adjudicate,
    items_refresh,
    label_change,
    label_submit,
)
from annotations.models import Assignment, Campaign, CampaignItem, Label, LabelHistory
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def outputs():
    return factories.two_model_outputs()


@pytest.fixture
def people(make_user):
    return [make_user("annotator", f"ann{i}") for i in range(1, 4)]


@pytest.fixture
def campaign(default_scheme, outputs, people):
    return factories.campaign_with_items(default_scheme, outputs, labels_per_output=2, annotators=people)


def _label(campaign, user, key="answer", note=""):
    lease = assignment_next(campaign=campaign, annotator=user)
    label_submit(campaign=campaign, annotator=user, item_id=lease.item_id, category_key=key, note=note)
    return lease.item_id


def _rank(lease) -> int:
    return CampaignItem.objects.get(pk=lease.item_id).rank


def test_next_follows_fixed_order_and_is_idempotent(campaign, people):
    first = assignment_next(campaign=campaign, annotator=people[0])
    assert _rank(first) == 0
    assert assignment_next(campaign=campaign, annotator=people[0]).pk == first.pk
    # Prefetch: "after" the current item gives a second lease, then both are returned idempotently.
    second = assignment_next(campaign=campaign, annotator=people[0], after_item_id=first.item_id)
    assert _rank(second) == 1
    assert (
        assignment_next(campaign=campaign, annotator=people[0], after_item_id=first.item_id).pk == second.pk
    )
    assert Assignment.objects.filter(annotator=people[0], status="active").count() == 2


def test_nobody_else_gets_a_held_item_and_nearest_completion_comes_first(campaign, people):
    a, b, c = people
    held_by_a = assignment_next(campaign=campaign, annotator=a)
    lease_b = assignment_next(campaign=campaign, annotator=b)
    assert lease_b.item_id != held_by_a.item_id
    label_submit(campaign=campaign, annotator=b, item_id=lease_b.item_id, category_key="answer")
    # The item with one label (of two) comes before untouched ones, but never to b again.
    assert assignment_next(campaign=campaign, annotator=c).item_id == lease_b.item_id
    assert assignment_next(campaign=campaign, annotator=b).item_id not in {lease_b.item_id, held_by_a.item_id}


def test_expired_lease_returns_to_the_pool(campaign, people):
    a, b, _ = people
    lease = assignment_next(campaign=campaign, annotator=a)
    Assignment.objects.filter(pk=lease.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    taken = assignment_next(campaign=campaign, annotator=b)
    assert taken.item_id == lease.item_id
    with pytest.raises(AuditError, match="went to another annotator"):
        label_submit(campaign=campaign, annotator=a, item_id=lease.item_id, category_key="answer")
    # a's old lease is marked expired when the item was leased again.
    assert Assignment.objects.get(pk=lease.pk).status == Assignment.Status.EXPIRED


def test_lease_length_follows_campaign(campaign, people):
    campaign.lease_minutes = 5
    lease = assignment_next(campaign=campaign, annotator=people[0])
    assert timedelta(minutes=4) < lease.expires_at - timezone.now() <= timedelta(minutes=5)


def test_unanimous_labels_complete_the_item(campaign, people):
    item_id = _label(campaign, people[0], "refusal-to-answer")
    assert _label(campaign, people[1], "refusal-to-answer") == item_id
    item = CampaignItem.objects.get(pk=item_id)
    assert (item.status, item.final_category.key, item.final_source) == (
        "complete",
        "refusal-to-answer",
        "unanimous",
    )
    assert item.label_count == 2


def test_disagreement_goes_to_adjudication(campaign, people, researcher):
    item_id = _label(campaign, people[0], "answer")
    _label(campaign, people[1], "harmful-refusal")
    item = CampaignItem.objects.get(pk=item_id)
    assert item.status == "disputed"
    assert item.final_category is None
    with pytest.raises(AuditError, match="reason"):
        item_adjudicate(
            campaign=campaign, adjudicator=researcher, item_id=item_id, category_key="answer", reason=" "
        )
    item_adjudicate(
        campaign=campaign,
        adjudicator=researcher,
        item_id=item_id,
        category_key="harmful-refusal",
        reason="guideline 5",
    )
    item.refresh_from_db()
    assert (item.status, item.final_category.key, item.final_source) == (
        "adjudicated",
        "harmful-refusal",
        "adjudicated",
    )
    assert item.adjudication.reason == "guideline 5"
    with pytest.raises(AuditError, match="adjudicated"):
        label_change(campaign=campaign, annotator=people[0], item_id=item_id, category_key="answer")


def test_adjudicating_an_undisputed_item_is_refused(campaign, people, researcher):
    item_id = _label(campaign, people[0])
    with pytest.raises(AuditError, match="Only disputed"):
        item_adjudicate(
            campaign=campaign, adjudicator=researcher, item_id=item_id, category_key="answer", reason="x"
        )


def test_majority_rule(default_scheme, outputs, people):
    campaign = factories.campaign_with_items(
        default_scheme, outputs[:1], labels_per_output=3, annotators=people
    )
    campaign.final_rule = Campaign.FinalRule.MAJORITY
    campaign.save()
    for user, key in zip(people, ["answer", "partial-answer", "answer"], strict=True):
        _label(campaign, user, key)
    item = campaign.items.get()
    assert (item.status, item.final_category.key, item.final_source) == ("complete", "answer", "majority")


def test_submit_requires_holding_the_item_and_a_known_category(campaign, people):
    a, b, _ = people
    lease = assignment_next(campaign=campaign, annotator=a)
    with pytest.raises(AuditError, match="do not hold"):
        label_submit(campaign=campaign, annotator=b, item_id=lease.item_id, category_key="answer")
    with pytest.raises(AuditError, match="Unknown category"):
        label_submit(campaign=campaign, annotator=a, item_id=lease.item_id, category_key="nope")
    with pytest.raises(NotFoundError):
        label_submit(campaign=campaign, annotator=a, item_id=10**9, category_key="answer")
    with pytest.raises(AuditError, match="active_seconds"):
        label_submit(
            campaign=campaign, annotator=a, item_id=lease.item_id, category_key="answer", active_seconds=-1
        )
    label_submit(
        campaign=campaign, annotator=a, item_id=lease.item_id, category_key="answer", active_seconds=3.5
    )
    with pytest.raises(AuditError, match="already labelled"):
        label_submit(campaign=campaign, annotator=a, item_id=lease.item_id, category_key="answer")
    assert Label.objects.get().active_seconds == 3.5


def test_skip_returns_item_to_others_but_not_to_me(campaign, people):
    a, b, _ = people
    lease = assignment_next(campaign=campaign, annotator=a)
    with pytest.raises(AuditError, match="why"):
        assignment_skip(campaign=campaign, annotator=a, item_id=lease.item_id, reason="  ")
    assignment_skip(campaign=campaign, annotator=a, item_id=lease.item_id, reason="not English")
    assert Assignment.objects.get(pk=lease.pk).skip_reason == "not English"
    assert assignment_next(campaign=campaign, annotator=a).item_id != lease.item_id
    assert assignment_next(campaign=campaign, annotator=b).item_id == lease.item_id


def test_change_keeps_history_and_re_resolves(campaign, people):
    a, b, _ = people
    item_id = _label(campaign, a, "answer")
    _label(campaign, b, "partial-answer")
    assert CampaignItem.objects.get(pk=item_id).status == "disputed"
    label_change(campaign=campaign, annotator=b, item_id=item_id, category_key="answer", note="misread")
    item = CampaignItem.objects.get(pk=item_id)
    assert (item.status, item.final_category.key) == ("complete", "answer")
    history = list(LabelHistory.objects.filter(label__annotator=b).order_by("pk"))
    assert [(h.old_category and h.old_category.key, h.new_category.key) for h in history] == [
        (None, "partial-answer"),
        ("partial-answer", "answer"),
    ]
    assert history[1].changed_by == b
    assert history[1].new_note == "misread"
    with pytest.raises(NotFoundError):
        label_change(campaign=campaign, annotator=people[2], item_id=item_id, category_key="answer")


def test_everything_labelled_returns_none(default_scheme, outputs, people):
    campaign = factories.campaign_with_items(
        default_scheme, outputs[:2], labels_per_output=1, annotators=people
    )
    _label(campaign, people[0])
    _label(campaign, people[0])
    assert assignment_next(campaign=campaign, annotator=people[1]) is None


@pytest.mark.parametrize(("depth", "expected_rank"), [(2, 3), (3, 2)])
def test_partially_labelled_scan_is_bounded(campaign, people, monkeypatch, depth, expected_rank):
    """An annotator far ahead of the others skips past their own half-done items to untouched ones."""
    from annotations.labelling import services as labelling

    monkeypatch.setattr(labelling, "PARTIAL_SCAN_DEPTH", depth)
    a, b, _ = people
    items = list(campaign.items.order_by("rank"))
    for item, user in [(items[0], a), (items[1], a), (items[2], b)]:
        factories.label(item, user)
        CampaignItem.objects.filter(pk=item.pk).update(label_count=1)
    # Partially labelled items in order: rank 0 (a's), 1 (a's), 2 (b's). With a depth of 2, a sees only
    # the first two, both his own, and takes the first untouched item (rank 3); with 3, rank 2.
    assert _rank(assignment_next(campaign=campaign, annotator=a)) == expected_rank


def test_items_carry_their_outputs_dimensions_and_a_label_summary_the_refresh_agrees_with(
    campaign, people, researcher
):
    """What submit, change and adjudicate write to the items is what items_refresh derives from the labels."""
    for user in people:
        for _ in range(3):
            _label(campaign, user, "answer" if user is not people[2] else "refusal-to-answer")
    item_id = Label.objects.filter(annotator=people[0]).order_by("pk").values_list("item_id", flat=True)[0]
    label_change(campaign=campaign, annotator=people[0], item_id=item_id, category_key="partial-answer")
    disputed = CampaignItem.objects.filter(campaign=campaign, status="disputed").first()
    item_adjudicate(
        campaign=campaign, adjudicator=researcher, item_id=disputed.pk, category_key="answer", reason="ok"
    )
    items = list(CampaignItem.objects.filter(campaign=campaign).select_related("output"))
    assert sum(item.label_count for item in items) == 9
    for item in items:
        labels = sorted(Label.objects.filter(item=item).values_list("annotator_id", "category_id"))
        assert item.label_signature == ",".join(f"{a}:{c}" for a, c in labels)
        assert item.label_pattern == ",".join(str(c) for c in sorted(c for _, c in labels))
        output = item.output
        assert (item.run_id, item.endpoint_id, item.prompt_id) == (
            output.run_id,
            output.endpoint_id,
            output.prompt_id,
        )
    assert items_refresh(item_ids=[item.pk for item in items]) == 0  # nothing to repair


def test_items_refresh_repairs_items_written_around_the_services(campaign, people):
    item = CampaignItem.objects.filter(campaign=campaign).order_by("rank").first()
    answer = campaign.scheme.categories.get(key="answer")
    for user in people[:2]:
        Label.objects.create(item=item, annotator=user, category=answer)
    assert items_refresh(item_ids=[item.pk]) == 1
    item.refresh_from_db()
    assert (item.label_count, item.status, item.final_category_id, item.final_source) == (
        2,
        "complete",
        answer.pk,
        "unanimous",
    )
    assert item.label_pattern == f"{answer.pk},{answer.pk}"


def test_items_refresh_command_repairs_a_campaign(campaign, people):
    from io import StringIO

    from django.core.management import call_command

    _label(campaign, people[0])
    CampaignItem.objects.filter(campaign=campaign).update(label_signature="", label_pattern="")
    out = StringIO()
    call_command("items_refresh", campaign=campaign.pk, stdout=out)
    assert f"{campaign.name}: 8 items, 1 refreshed" in out.getvalue()
    assert CampaignItem.objects.filter(campaign=campaign).exclude(label_signature="").count() == 1


@pytest.mark.parametrize("rule", ["adjudicate", "majority"])
@pytest.mark.parametrize("needed", [1, 3, 4])
def test_submit_writes_what_items_refresh_derives_from_the_label_rows(
    default_scheme, outputs, make_user, rule, needed
):
    """label_submit (the SQL function on PostgreSQL, Python on SQLite) derives an item's summary and outcome
    from its stored signature plus the new label, items_refresh from the label rows: over random labellings
    both must leave the same items (test_final_label.py checks the rule itself, case by case)."""
    import random

    people = [make_user("annotator", f"rater{i}") for i in range(5)]
    campaign = factories.campaign_with_items(
        default_scheme, outputs, labels_per_output=needed, annotators=people
    )
    Campaign.objects.filter(pk=campaign.pk).update(final_rule=rule)
    campaign.refresh_from_db()
    rng = random.Random(f"{rule}-{needed}")
    keys = ["answer", "answer", "refusal-to-answer", "partial-answer"]
    while True:
        busy = False
        for user in rng.sample(people, len(people)):
            lease = assignment_next(campaign=campaign, annotator=user)
            if lease is not None:
                label_submit(
                    campaign=campaign, annotator=user, item_id=lease.item_id, category_key=rng.choice(keys)
                )
                busy = True
        if not busy:
            break
    items = CampaignItem.objects.filter(campaign=campaign)
    assert all(item.label_count == needed for item in items)
    assert items_refresh(item_ids=[item.pk for item in items]) == 0
    statuses = {item.status for item in items}
    assert "complete" in statuses
    if needed > 1:
        assert len({item.label_pattern for item in items}) > 1  # not all alike


def test_a_candidate_someone_holds_is_not_taken_over_until_the_lease_runs_out(campaign, people):
    """The slow path behind a lease insert that met another active lease (ON CONFLICT on PostgreSQL)."""
    from annotations.labelling.services import _lease_take_over

    held = assignment_next(campaign=campaign, annotator=people[0])
    now = timezone.now()
    params = {
        "item": held.item_id,
        "annotator": people[1].pk,
        "now": now,
        "expires": now + timedelta(minutes=5),
    }
    assert _lease_take_over(params=params) is None  # live: left alone
    Assignment.objects.filter(pk=held.pk).update(expires_at=now - timedelta(seconds=1))
    lease_id, prompt, output, _model = _lease_take_over(params=params)
    assert Assignment.objects.get(pk=held.pk).status == Assignment.Status.EXPIRED
    mine = Assignment.objects.get(pk=lease_id)
    assert (mine.item_id, mine.annotator_id, mine.status) == (held.item_id, people[1].pk, "active")
    assert (prompt, output) == (held.prompt, held.output)
    CampaignItem.objects.filter(pk=held.item_id).update(status=CampaignItem.Status.COMPLETE)
    Assignment.objects.filter(pk=lease_id).update(expires_at=now - timedelta(seconds=1))
    assert _lease_take_over(params={**params, "annotator": people[2].pk}) is None  # complete: left alone
