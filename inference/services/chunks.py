"""The claim-and-fill mechanism shared by generation runs (rows: outputs) and score runs (rows: scores).

A run's rows exist (PENDING) before any task; a chunk task fills some of them. The rules that make
a chunk safe to run twice (a redelivered message, a resumed run):
- a chunk claims rows with one conditional UPDATE (PENDING, or RUNNING under a stale claim, to
  RUNNING with a fresh `claimed_at`, which is the claim's token); finished rows are never claimed;
- while it works it refreshes the token of the rows it still holds (a heartbeat), so only a dead
  worker's claim goes stale;
- results are written with conditional UPDATEs (status RUNNING and the chunk's token), from the
  task's thread, in short transactions; no transaction is open while requests are in flight (they
  run on the engine's thread);
- a cancelled run stops sending new requests (the chunk checks every second) but keeps the answers
  already in flight; if the chunk stops early (cancelled, an exception, a time limit) its unfinished
  rows are released (back to PENDING, or CANCELLED when the run was cancelled).
"""

import logging
import queue
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Count, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from inference.engine import Engine, JobResult

logger = logging.getLogger(__name__)

CANCEL_CHECK_SECONDS = 1.0
MAX_WRITE_BATCH = 500
BATCH_WINDOW = 0.05

# Row and run statuses are the same strings for both kinds (Score.Status is Output.Status).
PENDING, RUNNING, DONE, FAILED, CANCELLED = "pending", "running", "done", "failed", "cancelled"


@dataclass(frozen=True)
class RowKind:
    """Which table holds a run's rows, which table holds the runs, and the fields a result writes."""

    model: type[models.Model]
    run_model: type[models.Model]
    result_fields: tuple[str, ...]

    def rows(self, run_id: int) -> models.QuerySet:
        """The rows of run `run_id`."""
        return self.model.objects.filter(run_id=run_id)


def claim_stale_before(now: datetime) -> datetime:
    """Claims older than this belong to a dead worker (live ones are refreshed by the heartbeat)."""
    return now - timedelta(seconds=settings.INFERENCE_CLAIM_STALE_SECONDS)


def rows_claim(*, kind: RowKind, run_id: int, ids: Iterable[int]) -> datetime:
    """Claim the pending (or stale-running) rows among `ids`; return the claim's token."""
    token = timezone.now()
    claimable = Q(status=PENDING) | Q(status=RUNNING, claimed_at__lt=claim_stale_before(token))
    kind.rows(run_id).filter(claimable, pk__in=list(ids)).update(
        status=RUNNING, claimed_at=token, started_at=Coalesce("started_at", token)
    )
    return token


def rows_busy(*, kind: RowKind, run_id: int, ids: Iterable[int], token: datetime) -> list[int]:
    """Rows among `ids` that another chunk holds (running under a claim that is not ours)."""
    return list(
        kind.rows(run_id)
        .filter(pk__in=list(ids), status=RUNNING)
        .exclude(claimed_at=token)
        .values_list("pk", flat=True)
    )


def rows_heartbeat(*, kind: RowKind, ids: Iterable[int], token: datetime) -> datetime:
    """Refresh the claim on the rows still held, so no one takes them over; return the new token."""
    fresh = timezone.now()
    kind.model.objects.filter(pk__in=list(ids), status=RUNNING, claimed_at=token).update(claimed_at=fresh)
    return fresh


def rows_release(*, kind: RowKind, ids: Iterable[int], token: datetime, status: str) -> int:
    """Give back rows still held: PENDING (to be picked up again) or CANCELLED."""
    ids = list(ids)
    if not ids:
        return 0
    return kind.model.objects.filter(pk__in=ids, status=RUNNING, claimed_at=token).update(
        status=status, claimed_at=None
    )


def rows_write(*, kind: RowKind, rows: list[models.Model], token: datetime) -> int:
    """UPDATE each row's result fields where it is still RUNNING under `token`; return rows written.

    PostgreSQL: one UPDATE ... FROM (VALUES ...) for the whole batch; other databases: one
    parameterised statement per row (executemany). Either way one transaction per batch. (The ORM's
    bulk_update builds a CASE expression per field and row, which costs more CPU than the requests.)
    """
    if not rows:
        return 0
    meta = kind.model._meta
    fields = [meta.get_field(name) for name in kind.result_fields]
    claimed_at = meta.get_field("claimed_at").get_db_prep_value(token, connection)
    values = [
        [row.pk, *(field.get_db_prep_save(getattr(row, field.attname), connection) for field in fields)]
        for row in rows
    ]
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    # Identifiers come from the model's metadata and the status is a constant; every value is a parameter.
    running = f"{quote('status')} = '{RUNNING}'"
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            from psycopg2.extras import execute_values

            names = ", ".join(["id", *(quote(field.column) for field in fields)])
            assignments = ", ".join(
                f"{quote(f.column)} = v.{quote(f.column)}::{f.db_type(connection)}" for f in fields
            )
            sql = (
                f"UPDATE {table} AS o SET {assignments} FROM (VALUES %s) AS v({names}) "  # noqa: S608
                f"WHERE o.id = v.id::bigint AND o.{running} AND o.{quote('claimed_at')} = %s"
            )
            # execute_values fills the VALUES list; the claim token is bound first, then VALUES go in.
            sql = cursor.cursor.mogrify(sql.replace("VALUES %s", "VALUES {values}"), [claimed_at]).decode()
            sql = sql.replace("VALUES {values}", "VALUES %s")
            execute_values(cursor.cursor, sql, values, page_size=len(values))
        else:
            assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
            cursor.executemany(
                f"UPDATE {table} SET {assignments} "  # noqa: S608
                f"WHERE {quote('id')} = %s AND {running} AND {quote('claimed_at')} = %s",
                [[*row[1:], row[0], claimed_at] for row in values],
            )
        return cursor.rowcount


def run_is_cancelled(*, kind: RowKind, run_id: int) -> bool:
    """Whether the run has been cancelled (one indexed read)."""
    return kind.run_model.objects.filter(pk=run_id, status=CANCELLED).exists()


def run_mark_started(*, kind: RowKind, run_id: int) -> None:
    """A pending run becomes RUNNING when its first chunk starts work."""
    kind.run_model.objects.filter(pk=run_id, status=PENDING).update(
        status=RUNNING, started_at=Coalesce("started_at", timezone.now())
    )


def engine_drive(
    *,
    kind: RowKind,
    run_id: int,
    engine: Engine,
    write: Callable[[list[JobResult]], None],
    heartbeat: Callable[[], None],
) -> bool:
    """Run `engine`, writing its results in batches as they arrive, with heartbeats and cancel checks.

    Returns True when the run was cancelled meanwhile. Results that arrive after the loop stops are
    still written: their requests are spent.
    """
    heartbeat_every = max(0.5, settings.INFERENCE_CLAIM_STALE_SECONDS / 4)
    finished = cancelled = False
    try:
        engine.start()
        last_heartbeat = last_cancel_check = time.monotonic()
        while not finished:
            batch, finished = _next_batch(engine.results)
            if batch:
                write(batch)
            now = time.monotonic()
            if not finished and now - last_cancel_check >= CANCEL_CHECK_SECONDS:
                last_cancel_check = now
                if not cancelled and run_is_cancelled(kind=kind, run_id=run_id):
                    cancelled = True
                    engine.stop()  # answers already in flight are kept, nothing new is sent
            if not finished and now - last_heartbeat >= heartbeat_every:
                last_heartbeat = now
                heartbeat()
    finally:
        engine.cancel()
        if not engine.join(timeout=10):
            # Its requests are abandoned and its rows released by the caller, so nothing is lost or
            # written twice (a late result finds its claim gone); but a thread that ignores cancel is a bug.
            logger.warning("run %s: the engine did not stop within 10 s of cancel", run_id)
        leftover, _ = _next_batch(engine.results, wait=0)
        if leftover:
            write(leftover)
    return cancelled


def _next_batch(results: "queue.Queue[JobResult | None]", wait: float = 0.2) -> tuple[list[JobResult], bool]:
    """Wait up to `wait` s for a result, then gather more for up to BATCH_WINDOW s (one transaction
    per batch, not per row); True once the engine has ended."""
    batch: list[JobResult] = []
    try:
        item = results.get(timeout=wait) if wait else results.get_nowait()
    except queue.Empty:
        return batch, False
    until = time.monotonic() + (BATCH_WINDOW if wait else 0)
    while True:
        if item is None:
            return batch, True
        batch.append(item)
        left = until - time.monotonic()
        if len(batch) >= MAX_WRITE_BATCH:
            return batch, False
        try:
            item = results.get(timeout=left) if left > 0 else results.get_nowait()
        except queue.Empty:
            return batch, False


def run_status_refresh(*, kind: RowKind, run_id: int) -> str | None:
    """Set the run's status from its rows' statuses (one GROUP BY); a cancelled run stays cancelled."""
    counts = dict(kind.rows(run_id).values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    unfinished = counts.get(PENDING, 0) + counts.get(RUNNING, 0)
    runs = kind.run_model.objects.filter(pk=run_id)
    now = timezone.now()
    if unfinished:
        runs.exclude(status=CANCELLED).filter(started_at__isnull=False).update(
            status=RUNNING, finished_at=None
        )
    else:
        status = FAILED if counts.get(FAILED) else "completed"
        runs.exclude(status=CANCELLED).update(status=status, finished_at=now)
        runs.filter(status=CANCELLED, finished_at__isnull=True).update(finished_at=now)
    return runs.values_list("status", flat=True).first()
