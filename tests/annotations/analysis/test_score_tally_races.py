"""The score tally stays exact when an item write and a score write of the same output overlap.

Each case holds one write open in a transaction (a thread with its own connection), starts the other,
checks that it waits for a lock (the triggers' locks: the items FOR SHARE before a score write reads
them, SHARE on the scores table before an item insert reads them), then commits the first. Without
those locks each trigger reads the other's row as it was before, and the pair is counted under the old
key or not at all.
"""

import threading
import time
from collections import Counter

import pytest
from django.db import connection, connections, transaction

from annotations.models import Campaign, CampaignItem
from inference.models import Score, Scorer, ScoreRun
from tests import factories
from tests.annotations.analysis.test_score_tally import RECOUNT, TALLY
from tests.conftest import _requires_postgres

pytestmark = [pytest.mark.postgres]
WAIT_SECONDS = 20


@pytest.fixture
def world(transactional_db, default_scheme):
    _requires_postgres()
    outputs = factories.two_model_outputs()
    campaign = factories.campaign_with_items(default_scheme, outputs)
    scorer = Scorer.objects.create(
        name="crowd", kind=Scorer.Kind.IMPORTED, scheme=default_scheme, version="v1"
    )
    run = ScoreRun.objects.create(name="r", scorer=scorer, scorer_version="v1", status="completed")
    # outputs[0]: no score; [1]: a pending score; [2] and [3]: finished scores
    Score.objects.bulk_create(
        Score(run=run, scorer=scorer, scorer_version="v1", output=output) for output in outputs[1:]
    )
    Score.objects.filter(output__in=outputs[2:4]).update(status="done")
    items = dict(CampaignItem.objects.filter(campaign=campaign).values_list("output_id", "pk"))
    return {
        "items": [items[o.pk] for o in outputs],
        "outputs": [o.pk for o in outputs],
        "score_run": run.pk,
        "scorer": scorer.pk,
        "category": default_scheme.categories.get(key="refusal-to-answer").pk,
        "campaign": Campaign.objects.create(name="second", scheme=default_scheme).pk,
        "run": outputs[0].run_id,
    }


FINALISE = """UPDATE annotations_campaignitem SET final_category_id = %s, final_source = 'adjudicated',
    status = 'adjudicated' WHERE id = %s"""
WRITES = {  # name -> (SQL, parameters from the world)
    "finalise item": (FINALISE, lambda w: [w["category"], w["items"][0]]),
    "finalise item being scored": (FINALISE, lambda w: [w["category"], w["items"][1]]),
    "finalise scored item": (FINALISE, lambda w: [w["category"], w["items"][2]]),
    "insert done score": (
        """INSERT INTO inference_score (run_id, scorer_id, scorer_version, output_id, status,
            probabilities, is_unparseable, raw, attempts, last_error)
        VALUES (%s, %s, 'v1', %s, 'done', '{}', false, '{}', 1, '')""",
        lambda w: [w["score_run"], w["scorer"], w["outputs"][0]],
    ),
    "finish score": (
        "UPDATE inference_score SET status = 'done', category_id = %s WHERE output_id = %s",
        lambda w: [w["category"], w["outputs"][1]],
    ),
    "delete score": ("DELETE FROM inference_score WHERE output_id = %s", lambda w: [w["outputs"][2]]),
    "insert items": (
        """INSERT INTO annotations_campaignitem (campaign_id, output_id, rank, status, label_count,
            label_pattern, label_signature, run_id, endpoint_id, prompt_id, is_gold, final_source)
        SELECT %s, o.id, o.id, 'open', 0, '', '', o.run_id, o.endpoint_id, o.prompt_id, false, ''
        FROM inference_output o WHERE o.run_id = %s""",
        lambda w: [w["campaign"], w["run"]],
    ),
}
WAITING = """SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock'"""


def _write(world: dict, name: str) -> None:
    sql, params = WRITES[name]
    with connection.cursor() as cursor:
        cursor.execute(sql, params(world))


def _waiting_for_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(WAITING)
        return cursor.fetchone()[0] > 0


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("finalise item", "insert done score"),
        ("insert done score", "finalise item"),
        ("finalise item being scored", "finish score"),
        ("finish score", "finalise item being scored"),
        ("finalise scored item", "delete score"),
        ("delete score", "finalise scored item"),
        ("insert items", "finish score"),
        ("finish score", "insert items"),
        ("insert items", "insert done score"),
    ],
)
def test_overlapping_item_and_score_writes(world, first, second):
    held, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def hold() -> None:
        try:
            with transaction.atomic():
                _write(world, first)
                held.set()
                release.wait(WAIT_SECONDS)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            held.set()
            connections.close_all()

    def then() -> None:
        try:
            _write(world, second)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert held.wait(WAIT_SECONDS)
    follower = threading.Thread(target=then, daemon=True)
    follower.start()
    deadline = time.monotonic() + WAIT_SECONDS
    while not _waiting_for_a_lock() and follower.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    waited = follower.is_alive()
    release.set()
    holder.join(WAIT_SECONDS)
    follower.join(WAIT_SECONDS)
    assert not errors, errors
    assert waited, f"{second!r} did not wait for {first!r}"
    with connection.cursor() as cursor:
        cursor.execute(TALLY)
        tally = Counter({tuple(row[:-1]): row[-1] for row in cursor.fetchall()})
        cursor.execute(RECOUNT)
        recount = Counter({tuple(row[:-1]): row[-1] for row in cursor.fetchall()})
    assert tally == recount
    assert recount  # outputs[3]'s finished score at least
