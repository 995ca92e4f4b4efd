"""Filling a chunk of outputs: claim them, send the requests, write each result as it arrives.

The rules that make a chunk safe to run twice (a redelivered message, a resumed run):
- a chunk claims outputs with one conditional UPDATE (PENDING, or RUNNING under a stale claim, to
  RUNNING with a fresh `claimed_at`, which is the claim's token); finished outputs are never claimed;
- while it works it refreshes the token of the outputs it still holds (a heartbeat), so only a dead
  worker's claim goes stale;
- results are written with conditional UPDATEs (status RUNNING and the chunk's token), from this
  thread, in short transactions; no transaction is open while requests are in flight (they run on the
  engine's thread);
- a cancelled run stops sending new requests (the chunk checks every second) but keeps the answers
  already in flight; if the chunk stops early (cancelled, an exception, a time limit) its unfinished
  outputs are released (back to PENDING, or CANCELLED when the run was cancelled).
"""

import logging
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from inference.engine import EndpointConfig, Engine, Job, JobResult, RetryPolicy
from inference.models import GenerationRun, ModelEndpoint, Output

logger = logging.getLogger(__name__)

RESULT_FIELDS = (
    "status",
    "text",
    "finish_reason",
    "prompt_tokens",
    "completion_tokens",
    "latency_ms",
    "endpoint_snapshot",
    "request",
    "attempts",
    "last_error",
    "finished_at",
)
CANCEL_CHECK_SECONDS = 1.0
MAX_WRITE_BATCH = 500
BATCH_WINDOW = 0.05

ProgressCallback = Callable[[int, int], None]


def clean_text(text: str) -> str:
    """Model output as PostgreSQL can store it: NUL characters (which it refuses) become U+FFFD."""
    return text.replace("\x00", "\ufffd")


@dataclass
class ChunkReport:
    """What one chunk did: outputs claimed, done, failed, cancelled, and those a live worker holds."""

    claimed: int = 0
    done: int = 0
    failed: int = 0
    cancelled: int = 0
    busy: list[int] = field(default_factory=list)


def request_body(*, endpoint: ModelEndpoint, prompt_text: str, sample_index: int) -> dict:
    """The exact JSON body sent for one sample of one prompt.

    Chat endpoints send the system prompt (if any) and the prompt as the user turn; completion
    endpoints send the prompt as is. With a seed, sample i is sent `seed + i`, so the samples of a
    prompt differ from each other and a rerun reproduces each of them.
    """
    if endpoint.api_mode == ModelEndpoint.ApiMode.CHAT:
        messages = [{"role": "system", "content": endpoint.system_prompt}] if endpoint.system_prompt else []
        messages.append({"role": "user", "content": prompt_text})
        body: dict = {"model": endpoint.served_model_name, "messages": messages}
    else:
        body = {"model": endpoint.served_model_name, "prompt": prompt_text}
    body["temperature"] = endpoint.temperature
    body["top_p"] = endpoint.top_p
    body["max_tokens"] = endpoint.max_tokens
    if endpoint.seed is not None:
        body["seed"] = endpoint.seed + sample_index
    if endpoint.stop:
        body["stop"] = list(endpoint.stop)
    return body


def retry_policy(*, run: GenerationRun) -> RetryPolicy:
    """The run's attempts per output with the configured backoff bounds."""
    return RetryPolicy(
        max_attempts=run.max_attempts,
        base_delay=settings.INFERENCE_RETRY_BASE_MS / 1000,
        max_delay=settings.INFERENCE_RETRY_MAX_MS / 1000,
    )


def claim_stale_before(now: datetime) -> datetime:
    """Claims older than this belong to a dead worker (live ones are refreshed by the heartbeat)."""
    return now - timedelta(seconds=settings.INFERENCE_CLAIM_STALE_SECONDS)


def outputs_claim(*, run_id: int, output_ids: list[int]) -> datetime:
    """Claim the pending (or stale-running) outputs among `output_ids`; return the claim's token."""
    token = timezone.now()
    claimable = Q(status=Output.Status.PENDING) | Q(
        status=Output.Status.RUNNING, claimed_at__lt=claim_stale_before(token)
    )
    Output.objects.filter(claimable, run_id=run_id, pk__in=output_ids).update(
        status=Output.Status.RUNNING, claimed_at=token, started_at=Coalesce("started_at", token)
    )
    return token


class _Chunk:
    """One chunk's state while it runs: its token, its jobs, what it still holds."""

    def __init__(self, *, run: GenerationRun, token: datetime, on_progress: ProgressCallback | None) -> None:
        self.run = run
        self.token = token
        self.on_progress = on_progress
        self.report = ChunkReport()
        self.held: set[int] = set()
        self.rows: dict[int, tuple] = {}
        self.bodies: dict[int, dict] = {}
        self.endpoints: dict[int, ModelEndpoint] = {}

    def load(self) -> list[Job]:
        """Read the claimed outputs and build one job per output."""
        rows = list(
            Output.objects.filter(run_id=self.run.pk, status=Output.Status.RUNNING, claimed_at=self.token)
            .order_by("pk")
            .values_list("pk", "prompt__text", "endpoint_id", "sample_index", "attempts")
        )
        self.endpoints = {e.pk: e for e in ModelEndpoint.objects.filter(pk__in={r[2] for r in rows})}
        configs = {
            pk: EndpointConfig(
                id=pk,
                base_urls=tuple(e.base_urls),
                mode=e.api_mode,
                concurrency=e.concurrency_limit,
                timeout=e.request_timeout,
                served_model_name=e.served_model_name,
            )
            for pk, e in self.endpoints.items()
        }
        jobs = []
        unreachable = []
        for pk, text, endpoint_id, sample_index, attempts in rows:
            endpoint = self.endpoints[endpoint_id]
            self.rows[pk] = (endpoint_id, attempts)
            self.bodies[pk] = request_body(endpoint=endpoint, prompt_text=text, sample_index=sample_index)
            self.held.add(pk)
            if endpoint.base_urls:
                jobs.append(Job(key=pk, endpoint=configs[endpoint_id], body=self.bodies[pk]))
            else:
                unreachable.append(pk)
        self.report.claimed = len(rows)
        if unreachable:
            now = timezone.now()
            self.write(
                [
                    JobResult(pk, 0, None, "The model endpoint has no base URL.", "", "", None, now)
                    for pk in unreachable
                ]
            )
        return jobs

    def write(self, results: list[JobResult]) -> None:
        """Write results of outputs this chunk still holds, in one conditional UPDATE."""
        objs = []
        done = failed = 0
        for result in results:
            endpoint_id, attempts_before = self.rows[result.key]
            endpoint = self.endpoints[endpoint_id]
            completion = result.completion
            snapshot = {
                "endpoint_id": endpoint.pk,
                "name": endpoint.name,
                "url": result.base_url,
                "served_model_name": endpoint.served_model_name,
                "model_id": result.model_id,
                "max_model_len": result.max_model_len,
                "api_mode": endpoint.api_mode,
                "response_model": clean_text(completion.model) if completion else "",
            }
            output = Output(
                pk=result.key,
                status=Output.Status.DONE if completion else Output.Status.FAILED,
                text=clean_text(completion.text) if completion else "",
                finish_reason=clean_text(completion.finish_reason)[:32] if completion else "",
                prompt_tokens=completion.prompt_tokens if completion else None,
                completion_tokens=completion.completion_tokens if completion else None,
                latency_ms=completion.latency_ms if completion else None,
                endpoint_snapshot=snapshot,
                request=self.bodies[result.key],
                attempts=attempts_before + result.attempts,
                last_error=clean_text(result.error),
                finished_at=result.finished_at,
            )
            objs.append(output)
            done += completion is not None
            failed += completion is None
            self.held.discard(result.key)
        written = _write_results(objs, token=self.token)
        if written != len(objs):
            logger.warning(
                "run %s: %d results lost their claim and were not written", self.run.pk, len(objs) - written
            )
        self.report.done += done
        self.report.failed += failed
        if self.on_progress is not None:
            self.on_progress(done, failed)

    def heartbeat(self) -> None:
        """Refresh the claim on the outputs still held, so no one takes them over."""
        token = timezone.now()
        Output.objects.filter(pk__in=self.held, status=Output.Status.RUNNING, claimed_at=self.token).update(
            claimed_at=token
        )
        self.token = token

    def release(self, *, status: str) -> int:
        """Give back the outputs still held: PENDING (to be picked up again) or CANCELLED."""
        if not self.held:
            return 0
        count = Output.objects.filter(
            pk__in=self.held, status=Output.Status.RUNNING, claimed_at=self.token
        ).update(status=status, claimed_at=None)
        self.held.clear()
        return count


def _write_results(outputs: list[Output], *, token: datetime) -> int:
    """UPDATE each output's result fields where it is still RUNNING under `token`; return rows written.

    PostgreSQL: one UPDATE ... FROM (VALUES ...) for the whole batch; other databases: one
    parameterised statement per row (executemany). Either way one transaction per batch. (The ORM's
    bulk_update builds a CASE expression per field and row, which costs more CPU than the requests.)
    """
    fields = [Output._meta.get_field(name) for name in RESULT_FIELDS]
    claimed_at = Output._meta.get_field("claimed_at").get_db_prep_value(token, connection)
    rows = [
        [output.pk, *(field.get_db_prep_save(getattr(output, field.attname), connection) for field in fields)]
        for output in outputs
    ]
    quote = connection.ops.quote_name
    table = quote(Output._meta.db_table)
    # Identifiers come from the model's metadata and the status is a constant; every value is a parameter.
    running = f"{quote('status')} = '{Output.Status.RUNNING.value}'"
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
            execute_values(cursor.cursor, sql, rows, page_size=len(rows))
        else:
            assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
            cursor.executemany(
                f"UPDATE {table} SET {assignments} "  # noqa: S608
                f"WHERE {quote('id')} = %s AND {running} AND {quote('claimed_at')} = %s",
                [[*row[1:], row[0], claimed_at] for row in rows],
            )
        return cursor.rowcount


def outputs_generate(
    *, run_id: int, output_ids: list[int], on_progress: ProgressCallback | None = None
) -> ChunkReport:
    """Fill the pending outputs among `output_ids`; done ones and those a live worker holds are left alone.

    Blocks until every claimed output is DONE or FAILED (or the run is cancelled); `on_progress(done,
    failed)` is called after each batch of writes.
    """
    run = GenerationRun.objects.filter(pk=run_id).first()
    if run is None or run.status == GenerationRun.Status.CANCELLED:
        return ChunkReport()
    chunk = _Chunk(
        run=run, token=outputs_claim(run_id=run_id, output_ids=output_ids), on_progress=on_progress
    )
    jobs = chunk.load()
    chunk.report.busy = list(
        Output.objects.filter(run_id=run_id, pk__in=output_ids, status=Output.Status.RUNNING)
        .exclude(claimed_at=chunk.token)
        .values_list("pk", flat=True)
    )
    if not jobs:
        return chunk.report
    GenerationRun.objects.filter(pk=run_id, status=GenerationRun.Status.PENDING).update(
        status=GenerationRun.Status.RUNNING, started_at=Coalesce("started_at", timezone.now())
    )
    engine = Engine(jobs, retry_policy(run=run))
    heartbeat_every = max(0.5, settings.INFERENCE_CLAIM_STALE_SECONDS / 4)
    finished = cancelled = False
    try:
        engine.start()
        last_heartbeat = last_cancel_check = time.monotonic()
        while not finished:
            batch, finished = _next_batch(engine.results)
            if batch:
                chunk.write(batch)
            now = time.monotonic()
            if not finished and now - last_cancel_check >= CANCEL_CHECK_SECONDS:
                last_cancel_check = now
                if (
                    not cancelled
                    and GenerationRun.objects.filter(
                        pk=run_id, status=GenerationRun.Status.CANCELLED
                    ).exists()
                ):
                    cancelled = True
                    engine.stop()  # answers already in flight are kept, nothing new is sent
            if not finished and now - last_heartbeat >= heartbeat_every:
                last_heartbeat = now
                chunk.heartbeat()
    finally:
        engine.cancel()
        if not engine.join(timeout=10):
            # Its requests are abandoned and its outputs released below, so nothing is lost or written
            # twice (a late result finds its claim gone); but a thread that ignores cancel is a bug.
            logger.warning("run %s: the generation engine did not stop within 10 s of cancel", run_id)
        # Results that arrived after the loop stopped are still written: their requests are spent.
        leftover, _ = _next_batch(engine.results, wait=0)
        if leftover:
            chunk.write(leftover)
        released = chunk.release(status=Output.Status.CANCELLED if cancelled else Output.Status.PENDING)
        if cancelled:
            chunk.report.cancelled = released
    return chunk.report


def _next_batch(results: "queue.Queue[JobResult | None]", wait: float = 0.2) -> tuple[list[JobResult], bool]:
    """Wait up to `wait` s for a result, then gather more for up to BATCH_WINDOW s (one transaction
    per batch, not per output); True once the engine has ended."""
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


def run_status_refresh(*, run_id: int) -> str | None:
    """Set the run's status from its outputs' statuses (one GROUP BY); a cancelled run stays cancelled."""
    counts = dict(
        Output.objects.filter(run_id=run_id)
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    unfinished = counts.get(Output.Status.PENDING, 0) + counts.get(Output.Status.RUNNING, 0)
    runs = GenerationRun.objects.filter(pk=run_id)
    now = timezone.now()
    if unfinished:
        runs.exclude(status=GenerationRun.Status.CANCELLED).filter(started_at__isnull=False).update(
            status=GenerationRun.Status.RUNNING, finished_at=None
        )
    else:
        status = (
            GenerationRun.Status.FAILED
            if counts.get(Output.Status.FAILED)
            else GenerationRun.Status.COMPLETED
        )
        runs.exclude(status=GenerationRun.Status.CANCELLED).update(status=status, finished_at=now)
        runs.filter(status=GenerationRun.Status.CANCELLED, finished_at__isnull=True).update(finished_at=now)
    return runs.values_list("status", flat=True).first()
