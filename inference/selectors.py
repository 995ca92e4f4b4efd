"""Reads of the inference app: endpoints, runs with their progress, failures and outputs; score runs."""

from dataclasses import asdict, dataclass
from datetime import timedelta

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from inference.models import GenerationRun, ModelEndpoint, Output, Score, ScoreRun

RATE_WINDOW_SECONDS = 30


def endpoint_list() -> QuerySet[ModelEndpoint]:
    """All model endpoints, by name."""
    return ModelEndpoint.objects.order_by("name")


def _status_counts(prefix: str = "") -> dict:
    return {
        f"n_{status}": Count(f"{prefix}pk", filter=Q(**{f"{prefix}status": status}))
        for status in Output.Status.values
    }


def run_list() -> QuerySet[GenerationRun]:
    """Runs, newest first, each annotated with its output counts per status (one query, plus the models)."""
    return (
        GenerationRun.objects.select_related("prompt_set", "created_by")
        .prefetch_related("endpoints")
        .annotate(n_total=Count("outputs"), **_status_counts("outputs__"))
        .order_by("-created_at")
    )


@dataclass(frozen=True)
class RunProgress:
    """How far a run is: output counts per status, the recent rate and the time left."""

    run_id: int
    status: str
    status_display: str
    total: int
    done: int
    failed: int
    running: int
    pending: int
    cancelled: int
    outputs_per_second: float
    seconds_left: float | None
    is_finished: bool

    def as_dict(self) -> dict:
        """The progress as JSON-able data."""
        return asdict(self)


def run_progress(*, run_id: int) -> RunProgress | None:
    """The run's progress from its outputs' statuses (one aggregate query); None if the run is missing.

    The rate counts outputs that finished in the last 30 seconds; the time left is what is still to
    do (pending and running) at that rate.
    """
    run = GenerationRun.objects.filter(pk=run_id).first()
    if run is None:
        return None
    return _progress(run, Output.objects.filter(run_id=run_id))


def _progress(run: GenerationRun | ScoreRun, rows: QuerySet) -> RunProgress:
    """A run's progress from its rows' statuses (outputs or scores: the same statuses), in one query."""
    since = timezone.now() - timedelta(seconds=RATE_WINDOW_SECONDS)
    counts = rows.aggregate(
        total=Count("pk"),
        recent=Count(
            "pk", filter=Q(finished_at__gte=since, status__in=[Output.Status.DONE, Output.Status.FAILED])
        ),
        **_status_counts(),
    )
    started = run.started_at
    window = RATE_WINDOW_SECONDS
    if started is not None and started > since:
        window = max((timezone.now() - started).total_seconds(), 1.0)
    rate = counts["recent"] / window
    left = counts["n_pending"] + counts["n_running"]
    return RunProgress(
        run_id=run.pk,
        status=run.status,
        status_display=run.get_status_display(),
        total=counts["total"],
        done=counts["n_done"],
        failed=counts["n_failed"],
        running=counts["n_running"],
        pending=counts["n_pending"],
        cancelled=counts["n_cancelled"],
        outputs_per_second=round(rate, 2),
        seconds_left=round(left / rate, 1) if rate > 0 and left else (0.0 if not left else None),
        is_finished=run.status
        in {GenerationRun.Status.COMPLETED, GenerationRun.Status.FAILED, GenerationRun.Status.CANCELLED},
    )


def run_failures(*, run_id: int, limit: int = 20) -> QuerySet[Output]:
    """The run's most recent failed outputs with their errors."""
    return (
        Output.objects.filter(run_id=run_id, status=Output.Status.FAILED)
        .select_related("prompt", "endpoint")
        .order_by("-finished_at", "-pk")[:limit]
    )


def run_outputs(*, run_id: int) -> QuerySet[Output]:
    """The run's outputs in prompt order, with prompt and model."""
    return (
        Output.objects.filter(run_id=run_id)
        .select_related("prompt", "endpoint")
        .order_by("prompt__position", "endpoint__name", "sample_index")
    )


def score_run_progress(*, run_id: int) -> RunProgress | None:
    """The score run's progress from its scores' statuses (one aggregate query); None if it is missing.

    As for a generation run (`run_progress`): `outputs_per_second` counts the outputs scored in the
    last 30 seconds.
    """
    run = ScoreRun.objects.filter(pk=run_id).first()
    if run is None:
        return None
    return _progress(run, Score.objects.filter(run_id=run_id))
