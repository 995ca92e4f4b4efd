"""The sweeper: runs finish without anyone acting when a worker dies or the broker loses messages.

A run's rows are claimed and filled by chunk tasks (inference/services/chunks.py). Two failures leave
rows that no message will ever reach:
- a whole worker dies: the rows it held stay RUNNING under a claim that goes stale, and its
  unacknowledged messages come back only after the broker's visibility timeout (CELERY_TASK_TIME_LIMIT
  + 300 s);
- the broker loses its queue (a Redis restart without persistence, a flush): PENDING rows wait forever.

`runs_sweep`, run every INFERENCE_SWEEP_SECONDS by Celery beat (task `inference.sweep_runs`), looks at
every pending or running generation and score run. A run is *idle* when nothing has happened to it for
INFERENCE_CLAIM_STALE_SECONDS: no row claimed, refreshed by a heartbeat or finished, and the run itself
created or started earlier than that (a live chunk refreshes its claims every quarter of that time, so
a run that is working is never idle). For an idle run the sweeper queues chunk tasks again for its
PENDING rows and its RUNNING rows whose claim is stale, as the run's own dispatch does.

Nothing is ever generated twice: a chunk claims rows with a conditional UPDATE (PENDING, or RUNNING
under a stale claim) and writes results only under its own claim, so a message that was not lost after
all (a run queued behind a long one, a dead worker's message redelivered after the visibility timeout)
finds its rows claimed or done and does nothing. The cost of sweeping a run that was only waiting in the
queue is one more message per chunk, once per INFERENCE_CLAIM_STALE_SECONDS at most (the sweep's own
dispatch counts as activity: `swept_at`). Failed and cancelled rows are left alone (retry and resume
are a person's decision).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from celery import shared_task
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from inference.models import GenerationRun, ScoreRun
from inference.services.chunks import PENDING, RUNNING, claim_stale_before

logger = logging.getLogger(__name__)

ACTIVE = (GenerationRun.Status.PENDING, GenerationRun.Status.RUNNING)


@dataclass
class SweepReport:
    """What one sweep did: per run swept, the rows queued again (by kind and run id)."""

    checked: int = 0
    requeued: dict[str, dict[int, int]] = field(default_factory=lambda: {"generation": {}, "score": {}})


def _last_activity(run: GenerationRun | ScoreRun, rows) -> datetime | None:
    found = rows.aggregate(claimed=Max("claimed_at"), finished=Max("finished_at"))
    moments = [found["claimed"], found["finished"], run.created_at, run.started_at, run.swept_at]
    return max((m for m in moments if m is not None), default=None)


def _sweep_one(run: GenerationRun | ScoreRun, *, now: datetime) -> int:
    """Queue again the stranded rows of one idle run; how many (0 when it is not idle)."""
    from inference.services.runs import run_dispatch
    from inference.services.scoring import score_run_dispatch

    rows = run.scores if isinstance(run, ScoreRun) else run.outputs
    stale = claim_stale_before(now)
    last = _last_activity(run, rows)
    if last is not None and last >= stale:
        return 0
    stranded = Q(status=PENDING) | Q(status=RUNNING, claimed_at__lt=stale)
    with transaction.atomic():
        runs = type(run).objects.select_for_update(skip_locked=True)
        locked = runs.filter(pk=run.pk, status__in=ACTIVE).first()
        if locked is None:  # finished meanwhile, or another sweeper holds it
            return 0
        if isinstance(locked, ScoreRun):
            count = score_run_dispatch(run=locked, rows=stranded)
        else:
            count = run_dispatch(run=locked, rows=stranded)
        if count:
            type(run).objects.filter(pk=run.pk).update(swept_at=now)
    return count


def runs_sweep(*, now: datetime | None = None) -> SweepReport:
    """Sweep every pending or running generation and score run (see the module docstring)."""
    now = now or timezone.now()
    report = SweepReport()
    for kind, model in (("generation", GenerationRun), ("score", ScoreRun)):
        for run in model.objects.filter(status__in=ACTIVE).order_by("pk"):
            report.checked += 1
            chunks = _sweep_one(run, now=now)
            if chunks:
                report.requeued[kind][run.pk] = chunks
                logger.warning(
                    "sweep: %s run %s was idle; %d chunk task(s) queued again", kind, run.pk, chunks
                )
    return report


# Registered in the worker by CELERY_IMPORTS (auditproject/settings.py), not by inference/tasks.py: the
# sweeper queues the chunk tasks that tasks.py defines, so tasks.py importing it would close a circle.
@shared_task(name="inference.sweep_runs")
def sweep_runs() -> dict:
    """Queue again the stranded rows of idle runs (see the module docstring); Celery beat runs it."""
    report = runs_sweep()
    return {"checked": report.checked, "requeued": report.requeued}
