"""Starting, cancelling, resuming and retrying generation runs; a run's status follows its outputs.

Cancel, resume and retry take score runs too: a score run's rows are its scores, and they follow
the same statuses and claims (inference.services.chunks).
"""

from collections.abc import Iterable

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from annotations.core.audit import audit_event_record
from annotations.core.exceptions import AuditError
from annotations.library.promptsets import promptset_freeze
from annotations.models import PromptSet
from inference.models import GenerationRun, ModelEndpoint, Output, ScoreRun
from inference.services.chunks import claim_stale_before
from inference.services.generation import (
    ChunkReport,
    ProgressCallback,
    outputs_generate,
    run_status_refresh,
)

MAX_SAMPLES = 20
MAX_ATTEMPTS = 20
MAX_CHUNK = 10_000
BULK_BATCH = 2_000


def _check_run_settings(*, samples_per_prompt: int, chunk_size: int, max_attempts: int) -> list[dict]:
    errors = []
    if not 1 <= samples_per_prompt <= MAX_SAMPLES:
        errors.append(
            {"field": "samples_per_prompt", "message": f"Samples per prompt must be 1 to {MAX_SAMPLES}."}
        )
    if not 1 <= chunk_size <= MAX_CHUNK:
        errors.append({"field": "chunk_size", "message": f"The chunk size must be 1 to {MAX_CHUNK}."})
    if not 1 <= max_attempts <= MAX_ATTEMPTS:
        errors.append(
            {"field": "max_attempts", "message": f"Attempts per output must be 1 to {MAX_ATTEMPTS}."}
        )
    return errors


def run_start(
    *,
    prompt_set: PromptSet,
    endpoints: Iterable[ModelEndpoint],
    samples_per_prompt: int = 3,
    name: str = "",
    actor=None,
    chunk_size: int = 256,
    max_attempts: int = 5,
    dispatch: bool = True,
) -> GenerationRun:
    """Create a run and all its output rows (PENDING), freeze the prompt set, and (if `dispatch`)
    queue the chunk tasks once the transaction commits.

    Outputs are ordered prompt by prompt, so a chunk spreads over every model of the run.
    """
    endpoints = sorted(set(endpoints), key=lambda e: e.pk)
    errors = _check_run_settings(
        samples_per_prompt=samples_per_prompt, chunk_size=chunk_size, max_attempts=max_attempts
    )
    if not endpoints:
        errors.append({"field": "endpoints", "message": "Choose at least one model."})
    for endpoint in endpoints:
        if not endpoint.base_urls:
            errors.append(
                {"field": "endpoints", "message": f"Model {endpoint.name!r} has no base URL to call."}
            )
        if not endpoint.is_active:
            errors.append({"field": "endpoints", "message": f"Model {endpoint.name!r} is not active."})
    prompt_ids = list(prompt_set.prompts.order_by("position").values_list("pk", flat=True))
    if not prompt_ids:
        errors.append({"field": "prompt_set", "message": f"The prompt set {prompt_set} has no prompts."})
    if errors:
        raise AuditError("The run cannot start: " + " ".join(e["message"] for e in errors), errors=errors)
    with transaction.atomic():
        promptset_freeze(prompt_set=prompt_set)
        run = GenerationRun.objects.create(
            name=name.strip() or f"{prompt_set} x {', '.join(e.name for e in endpoints)}",
            prompt_set=prompt_set,
            samples_per_prompt=samples_per_prompt,
            chunk_size=chunk_size,
            max_attempts=max_attempts,
            created_by=actor if actor is not None and actor.is_authenticated else None,
        )
        run.endpoints.set(endpoints)
        Output.objects.bulk_create(
            (
                Output(run=run, prompt_id=prompt_id, endpoint=endpoint, sample_index=sample)
                for prompt_id in prompt_ids
                for endpoint in endpoints
                for sample in range(samples_per_prompt)
            ),
            batch_size=BULK_BATCH,
        )
        audit_event_record(
            actor=actor,
            action="run.start",
            target=run,
            details={
                "prompt_set": prompt_set.pk,
                "endpoints": [e.pk for e in endpoints],
                "samples_per_prompt": samples_per_prompt,
                "outputs": len(prompt_ids) * len(endpoints) * samples_per_prompt,
            },
        )
        if dispatch:
            run_dispatch(run=run)
    return run


def run_dispatch(*, run: GenerationRun, rows: Q | None = None) -> int:
    """Queue one chunk task per `chunk_size` pending outputs (or outputs matching `rows`: the sweeper's
    stranded ones), after the current transaction commits."""
    from inference.tasks import generate_chunk

    chosen = run.outputs.filter(rows if rows is not None else Q(status=Output.Status.PENDING))
    ids = list(chosen.order_by("pk").values_list("pk", flat=True))
    chunks = [ids[i : i + run.chunk_size] for i in range(0, len(ids), run.chunk_size)]
    for chunk in chunks:
        transaction.on_commit(lambda chunk=chunk: generate_chunk.delay(run.pk, chunk))
    return len(chunks)


def run_generate_in_process(
    *, run: GenerationRun, on_progress: ProgressCallback | None = None
) -> ChunkReport:
    """Generate every pending output of `run` in this process, chunk after chunk (no broker needed)."""
    total = ChunkReport()
    ids = list(run.outputs.filter(status=Output.Status.PENDING).order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(ids), run.chunk_size):
        report = outputs_generate(
            run_id=run.pk, output_ids=ids[start : start + run.chunk_size], on_progress=on_progress
        )
        total.claimed += report.claimed
        total.done += report.done
        total.failed += report.failed
        total.cancelled += report.cancelled
        total.busy += report.busy
        if report.cancelled:
            break
    run_status_refresh(run_id=run.pk)
    return total


def _rows(run: GenerationRun | ScoreRun):
    """A run's rows: a generation run's outputs, a score run's scores."""
    return run.scores if isinstance(run, ScoreRun) else run.outputs


def _action(run: GenerationRun | ScoreRun, verb: str) -> str:
    return f"score_run.{verb}" if isinstance(run, ScoreRun) else f"run.{verb}"


def _dispatch(run: GenerationRun | ScoreRun) -> None:
    if isinstance(run, ScoreRun):
        from inference.services.scoring import score_run_dispatch

        score_run_dispatch(run=run)
    else:
        run_dispatch(run=run)


@transaction.atomic
def run_cancel(*, run: GenerationRun | ScoreRun, actor) -> int:
    """Cancel a run: pending rows become CANCELLED now, rows in flight within about a second."""
    updated = (
        type(run)
        .objects.filter(pk=run.pk, status__in=[GenerationRun.Status.PENDING, GenerationRun.Status.RUNNING])
        .update(status=GenerationRun.Status.CANCELLED)
    )
    if not updated:
        raise AuditError(
            f"The run is {run.get_status_display().lower()}; only a pending or running run can be cancelled."
        )
    count = _rows(run).filter(status=Output.Status.PENDING).update(status=Output.Status.CANCELLED)
    if not _rows(run).filter(status=Output.Status.RUNNING).exists():
        type(run).objects.filter(pk=run.pk).update(finished_at=timezone.now())
    audit_event_record(actor=actor, action=_action(run, "cancel"), target=run, details={"cancelled": count})
    run.refresh_from_db()
    return count


def _run_reopen(*, run: GenerationRun | ScoreRun, outputs: Q, actor, action: str, dispatch: bool) -> int:
    with transaction.atomic():
        locked = type(run).objects.select_for_update().get(pk=run.pk)
        count = _rows(locked).filter(outputs).update(status=Output.Status.PENDING, claimed_at=None)
        if not count:
            return 0
        type(run).objects.filter(pk=run.pk).update(
            status=GenerationRun.Status.RUNNING if locked.started_at else GenerationRun.Status.PENDING,
            finished_at=None,
        )
        audit_event_record(actor=actor, action=_action(run, action), target=run, details={"rows": count})
        if dispatch:
            _dispatch(locked)
    run.refresh_from_db()
    return count


def run_resume(*, run: GenerationRun | ScoreRun, actor, dispatch: bool = True) -> int:
    """Queue again what has not finished: pending, cancelled and failed outputs, and outputs whose
    worker died (a stale claim). Done outputs, and outputs a live worker holds, are not touched."""
    unfinished = Q(status__in=[Output.Status.PENDING, Output.Status.CANCELLED, Output.Status.FAILED]) | Q(
        status=Output.Status.RUNNING, claimed_at__lt=claim_stale_before(timezone.now())
    )
    count = _run_reopen(run=run, outputs=unfinished, actor=actor, action="resume", dispatch=dispatch)
    if not count:
        raise AuditError("Nothing to resume: every output is done or held by a live worker.")
    return count


def run_retry(*, run: GenerationRun | ScoreRun, actor, dispatch: bool = True) -> int:
    """Queue the failed outputs again (with a fresh budget of attempts); nothing else is touched."""
    count = _run_reopen(
        run=run, outputs=Q(status=Output.Status.FAILED), actor=actor, action="retry", dispatch=dispatch
    )
    if not count:
        raise AuditError("Nothing to retry: the run has no failed outputs.")
    return count
