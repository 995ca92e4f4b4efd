"""Reads of the scorer and score-run pages and API: lists with counts, a run's tallies, failures and scores.

A score run's progress (counts per status, rate, time left) is `inference.selectors.score_run_progress`.
"""

from django.db.models import Count, Max, Q, QuerySet

from inference.models import Score, Scorer, ScoreRun


def _score_counts(prefix: str = "") -> dict:
    counts = {
        f"n_{status}": Count(f"{prefix}pk", filter=Q(**{f"{prefix}status": status}))
        for status in Score.Status.values
    }
    counts["n_unparseable"] = Count(f"{prefix}pk", filter=Q(**{f"{prefix}is_unparseable": True}))
    return counts


def scorer_list() -> QuerySet[Scorer]:
    """Scorers by name with their scheme, model, run count and last run's start (one query)."""
    return (
        Scorer.objects.select_related("scheme", "endpoint", "created_by")
        .annotate(n_runs=Count("runs"), last_run_at=Max("runs__created_at"))
        .order_by("name")
    )


def score_run_list() -> QuerySet[ScoreRun]:
    """Score runs, newest first, each with its scorer, target and score counts per status (one query)."""
    return (
        ScoreRun.objects.select_related("scorer", "generation_run", "campaign", "created_by")
        .annotate(n_total=Count("scores"), **_score_counts("scores__"))
        .order_by("-created_at", "-pk")
    )


def score_run_categories(*, run_id: int) -> list[dict]:
    """The run's done scores per category (scheme order), then unparseable ones and flags (one query)."""
    rows = (
        Score.objects.filter(run_id=run_id, status=Score.Status.DONE)
        .values("category__key", "category__name", "category__order", "is_unparseable", "is_flagged")
        .annotate(n=Count("pk"))
        .order_by("category__order", "is_unparseable", "is_flagged")
    )
    tally: dict[tuple, dict] = {}
    for row in rows:
        if row["is_unparseable"]:
            key, name = None, "Unparseable (no category)"
        elif row["category__key"] is None:
            key, name = None, "No category"
        else:
            key, name = row["category__key"], row["category__name"]
        entry = tally.setdefault(
            (row["is_unparseable"], key), {"key": key, "name": name, "n": 0, "flagged": 0}
        )
        entry["n"] += row["n"]
        if row["is_flagged"]:
            entry["flagged"] += row["n"]
    return list(tally.values())


def score_run_unparseable_count(*, run_id: int) -> int:
    """How many of the run's scores name no category of the scheme (counted, never mapped)."""
    return Score.objects.filter(run_id=run_id, is_unparseable=True).count()


def score_run_failures(*, run_id: int, limit: int = 20) -> QuerySet[Score]:
    """The run's first failed scores (in output order) with their outputs' prompt and model."""
    return (
        Score.objects.filter(run_id=run_id, status=Score.Status.FAILED)
        .select_related("output__prompt", "output__endpoint")
        .order_by("pk")[:limit]
    )


def score_run_scores(*, run_id: int) -> QuerySet[Score]:
    """The run's scores in output order, with their category."""
    return Score.objects.filter(run_id=run_id).select_related("category").order_by("pk")


def score_run_latest(*, run_id: int, limit: int = 10) -> QuerySet[Score]:
    """The run's most recently finished scores, with category, output text, prompt and model."""
    return (
        Score.objects.filter(run_id=run_id, status=Score.Status.DONE)
        .select_related("category", "output__prompt", "output__endpoint")
        .order_by("-finished_at", "-pk")[:limit]
    )
