"""Filling a chunk of outputs: claim them, send the requests, write each result as it arrives.

The claim, heartbeat, conditional write and release rules are those of inference.services.chunks,
shared with score runs; this module knows what an output's request and result look like.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from inference.engine import EndpointConfig, Engine, Job, JobResult, RetryPolicy
from inference.models import GenerationRun, ModelEndpoint, Output
from inference.services import chunks
from inference.services.chunks import RowKind

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
OUTPUT_ROWS = RowKind(model=Output, run_model=GenerationRun, result_fields=RESULT_FIELDS)

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


def retry_policy(*, run) -> RetryPolicy:
    """The run's attempts per request with the configured backoff bounds (generation and score runs)."""
    return RetryPolicy(
        max_attempts=run.max_attempts,
        base_delay=settings.INFERENCE_RETRY_BASE_MS / 1000,
        max_delay=settings.INFERENCE_RETRY_MAX_MS / 1000,
    )


def outputs_claim(*, run_id: int, output_ids: list[int]) -> datetime:
    """Claim the pending (or stale-running) outputs among `output_ids`; return the claim's token."""
    return chunks.rows_claim(kind=OUTPUT_ROWS, run_id=run_id, ids=output_ids)


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
        written = chunks.rows_write(kind=OUTPUT_ROWS, rows=objs, token=self.token)
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
        self.token = chunks.rows_heartbeat(kind=OUTPUT_ROWS, ids=self.held, token=self.token)

    def release(self, *, status: str) -> int:
        """Give back the outputs still held: PENDING (to be picked up again) or CANCELLED."""
        count = chunks.rows_release(kind=OUTPUT_ROWS, ids=self.held, token=self.token, status=status)
        self.held.clear()
        return count


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
    chunk.report.busy = chunks.rows_busy(kind=OUTPUT_ROWS, run_id=run_id, ids=output_ids, token=chunk.token)
    if not jobs:
        return chunk.report
    chunks.run_mark_started(kind=OUTPUT_ROWS, run_id=run_id)
    engine = Engine(jobs, retry_policy(run=run))
    cancelled = False
    try:
        cancelled = chunks.engine_drive(
            kind=OUTPUT_ROWS, run_id=run_id, engine=engine, write=chunk.write, heartbeat=chunk.heartbeat
        )
    finally:
        released = chunk.release(status=Output.Status.CANCELLED if cancelled else Output.Status.PENDING)
        if cancelled:
            chunk.report.cancelled = released
    return chunk.report


def run_status_refresh(*, run_id: int) -> str | None:
    """Set the run's status from its outputs' statuses (one GROUP BY); a cancelled run stays cancelled."""
    return chunks.run_status_refresh(kind=OUTPUT_ROWS, run_id=run_id)
