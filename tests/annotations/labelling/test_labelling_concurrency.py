"""16 annotators asking for items and labelling at once on PostgreSQL (threads, one connection each)."""

import random
import threading
import time
from collections import Counter

import pytest
from django.db import connection, connections

from annotations.analysis.selectors import StatsFilters, item_rows, label_set_rows
from annotations.labelling.services import assignment_next, assignment_skip, label_submit
from annotations.models import Assignment, CampaignItem, Label
from tests import factories
from tests.conftest import _requires_postgres

pytestmark = [pytest.mark.postgres]

ANNOTATORS = 16
LABELS_PER_OUTPUT = 3
# Safety net, not a speed check: the 240 labels take about a second, a few on a busy machine. A worker
# still finding open items after this long reports it (an item nobody can get is a bug) and stops.
GIVE_UP_SECONDS = 120


@pytest.fixture
def big_campaign(transactional_db, default_scheme, make_user):
    _requires_postgres()
    members = [factories.group_member(f"Name{i}") for i in range(10)]
    prompt_set = factories.prompt_set_with_prompts(members, [factories.template() for _ in range(4)])
    run = factories.run_with_outputs(prompt_set, [factories.endpoint()], samples=2)
    people = [make_user("annotator", f"conc{i}") for i in range(ANNOTATORS)]
    campaign = factories.campaign_with_items(
        default_scheme, run.outputs.all(), labels_per_output=LABELS_PER_OUTPUT, annotators=people
    )
    return campaign, people


def test_sixteen_concurrent_annotators(big_campaign):
    campaign, people = big_campaign
    keys = ["answer", "refusal-to-answer"]
    held: dict[int, int] = {}
    guard = threading.Lock()
    violations: list[str] = []
    errors: list[BaseException] = []
    done = Counter()
    start = threading.Barrier(ANNOTATORS)

    def work(user, seed: int) -> None:
        rng = random.Random(seed)
        try:
            start.wait(timeout=GIVE_UP_SECONDS)
            give_up = time.monotonic() + GIVE_UP_SECONDS
            while True:
                lease = assignment_next(campaign=campaign, annotator=user)
                if lease is None:
                    # Nothing for me now; items others hold may still come back (a skip) until all are done.
                    open_items = CampaignItem.objects.filter(campaign=campaign, status="open")
                    if not open_items.exists():
                        return
                    if time.monotonic() > give_up:
                        message = f"{user} gave up after {GIVE_UP_SECONDS} s: {open_items.count()} items open"
                        errors.append(AssertionError(message))
                        return
                    time.sleep(0.02)
                    continue
                with guard:
                    if lease.item_id in held:
                        violations.append(f"{user} got item {lease.item_id} held by {held[lease.item_id]}")
                    held[lease.item_id] = user.pk
                time.sleep(rng.random() * 0.003)  # reading the output
                with guard:
                    del held[lease.item_id]  # before the write that releases it, so no false alarm
                if rng.random() < 0.05:
                    assignment_skip(
                        campaign=campaign, annotator=user, item_id=lease.item_id, reason="test skip"
                    )
                    continue
                label_submit(
                    campaign=campaign, annotator=user, item_id=lease.item_id, category_key=rng.choice(keys)
                )
                done[user.pk] += 1
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(user, i), daemon=True) for i, user in enumerate(people)]
    for thread in threads:
        thread.start()
    # A worker gives up on its own after GIVE_UP_SECONDS; the extra minute covers one stuck in a query.
    deadline = time.monotonic() + GIVE_UP_SECONDS + 60
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    stuck = [thread.name for thread in threads if thread.is_alive()]
    assert not stuck, f"{len(stuck)} annotator threads still running: {stuck}"
    assert not errors, errors
    assert not violations, violations

    items = CampaignItem.objects.filter(campaign=campaign)
    per_item = Counter(Label.objects.filter(item__campaign=campaign).values_list("item_id", flat=True))
    assert max(per_item.values()) == LABELS_PER_OUTPUT  # never more labels than needed
    for item in items:
        assert per_item[item.pk] == item.label_count == LABELS_PER_OUTPUT
        assert item.status != CampaignItem.Status.OPEN
    pairs = Counter(Label.objects.filter(item__campaign=campaign).values_list("item_id", "annotator_id"))
    assert max(pairs.values()) == 1  # nobody labelled an output twice
    skipped = set(
        Assignment.objects.filter(status=Assignment.Status.SKIPPED).values_list("item_id", "annotator_id")
    )
    assert not skipped & set(pairs)  # a skipped item was not given back to whoever skipped it
    assert sum(done.values()) == items.count() * LABELS_PER_OUTPUT
    assert len(done) > 1  # the work was actually shared
    assert connection.vendor == "postgresql"
    # the dashboard tallies, kept by triggers under all that concurrency, equal a fresh count of the items
    tallied = item_rows(campaign.pk, from_tallies=True).as_tuples()
    assert sorted(tallied) == sorted(item_rows(campaign.pk, from_tallies=False).as_tuples())
    label_sets = Counter()
    for *key, n in label_set_rows(StatsFilters(campaign=campaign.pk), from_tallies=True).as_tuples():
        label_sets[tuple(key)] += n
    assert label_sets == Counter(
        {
            tuple(key): n
            for *key, n in label_set_rows(StatsFilters(campaign=campaign.pk), from_tallies=False).as_tuples()
        }
    )
