"""HTML views of scorers and score runs (with live progress).

Researchers read; admins register and change scorers, and start, cancel, resume and retry score runs.
"""

import json

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from annotations.core.decorators import role_required
from annotations.core.exceptions import AuditError
from annotations.core.roles import user_is_admin
from inference import score_selectors
from inference.models import Scorer, ScoreRun
from inference.score_forms import ScorerEditForm, ScorerForm, ScoreRunStartForm
from inference.selectors import score_run_progress
from inference.services.runs import run_cancel, run_resume, run_retry
from inference.services.scoring import score_run_start, scorer_create, scorer_update

RULES_FIELD = "config.rules["


def _has_broker() -> bool:
    return not settings.CELERY_TASK_ALWAYS_EAGER


def _no_broker_message(request: HttpRequest, run: ScoreRun) -> None:
    messages.warning(
        request,
        f"No task broker is configured (CELERY_BROKER_URL), so nothing scores in the background: "
        f"run `python manage.py score --score-run {run.pk}` on this machine.",
    )


def _scorer_form_errors(form, exc: AuditError) -> None:
    """Put each of the service's errors on its field: `config.x` on the JSON (naming x), a rule's on the
    phrases when they were given (naming the line), anything else on the form."""
    for error in exc.errors or [{"field": None, "message": exc.message}]:
        field, message = error.get("field") or "", error["message"]
        if field in form.fields:
            form.add_error(field, message)
        elif field.startswith(RULES_FIELD) and "phrases" in form.fields and form.uses_phrases():
            index, _, rest = field[len(RULES_FIELD) :].partition("]")
            line = f"phrase {int(index) + 1}" if index.isdigit() else "phrases"
            form.add_error("phrases", f"{line}{rest.replace('.', ' ')}: {message}")
        elif field.startswith("config.") and "config" in form.fields:
            form.add_error("config", f"{field.removeprefix('config.')}: {message}")
        else:
            form.add_error(None, message)


def _query_id(request: HttpRequest, name: str) -> int | None:
    value = request.GET.get(name, "")
    return int(value) if value.isdigit() and len(value) <= 18 else None


@role_required("researcher")
def scorer_list_view(request: HttpRequest) -> HttpResponse:
    """Every scorer with its kind, scheme, model, version and runs."""
    return render(
        request,
        "inference/scorer_list.html",
        {"scorers": score_selectors.scorer_list(), "can_manage": user_is_admin(request.user)},
    )


@role_required("admin")
def scorer_create_view(request: HttpRequest) -> HttpResponse:
    """Register a scorer; a wrong configuration is reported on its field."""
    form = ScorerForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            scorer = scorer_create(actor=request.user, **form.values())
        except AuditError as exc:
            _scorer_form_errors(form, exc)
        else:
            messages.success(request, f"Scorer {scorer.name} registered (version {scorer.version}).")
            return redirect("inference:scorer_detail", pk=scorer.pk)
    return render(request, "inference/scorer_form.html", {"form": form, "scorer": None})


@role_required("researcher")
def scorer_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    """A scorer's configuration, version and score runs."""
    scorer = get_object_or_404(score_selectors.scorer_list(), pk=pk)
    return render(
        request,
        "inference/scorer_detail.html",
        {
            "scorer": scorer,
            "config_json": json.dumps(scorer.config, indent=2, ensure_ascii=False),
            "runs": score_selectors.score_run_list().filter(scorer=scorer)[:100],
            "can_manage": user_is_admin(request.user),
        },
    )


@role_required("admin")
def scorer_edit_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a scorer's configuration (a new version: old scores keep theirs), description or state."""
    scorer = get_object_or_404(Scorer.objects.select_related("scheme", "endpoint"), pk=pk)
    if request.method == "POST":
        form = ScorerEditForm(request.POST, scorer=scorer)
    else:
        form = ScorerEditForm(scorer=scorer)
    if request.method == "POST" and form.is_valid():
        old_version = scorer.version
        try:
            scorer_update(scorer=scorer, actor=request.user, **form.values())
        except AuditError as exc:
            _scorer_form_errors(form, exc)
        else:
            changed = f"new version {scorer.version}" if scorer.version != old_version else "same version"
            messages.success(request, f"Scorer {scorer.name} saved ({changed}).")
            return redirect("inference:scorer_detail", pk=scorer.pk)
    return render(request, "inference/scorer_form.html", {"form": form, "scorer": scorer})


@role_required("researcher")
def score_run_list_view(request: HttpRequest) -> HttpResponse:
    """Every score run with its counts per status."""
    return render(
        request,
        "inference/score_run_list.html",
        {"runs": score_selectors.score_run_list()[:200], "can_manage": user_is_admin(request.user)},
    )


@role_required("admin")
def score_run_create_view(request: HttpRequest) -> HttpResponse:
    """Start a score run: its score rows are created now and the chunk tasks queued."""
    initial = {
        "scorer": _query_id(request, "scorer"),
        "generation_run": _query_id(request, "run"),
        "campaign": _query_id(request, "campaign"),
    }
    form = ScoreRunStartForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            run = score_run_start(
                scorer=data["scorer"],
                generation_run=data["generation_run"],
                campaign=data["campaign"],
                name=data["name"],
                chunk_size=data["chunk_size"],
                max_attempts=data["max_attempts"],
                actor=request.user,
                dispatch=_has_broker(),
            )
        except AuditError as exc:
            for error in exc.errors or [{"field": None, "message": exc.message}]:
                field = error.get("field") if error.get("field") in form.fields else None
                form.add_error(field, error["message"])
        else:
            to_score = run.scores.count()
            already = (
                f" ({run.already_scored} were scored by this version before)" if run.already_scored else ""
            )
            messages.success(request, f"Score run started: {to_score} outputs to score{already}.")
            if to_score and not _has_broker():
                _no_broker_message(request, run)
            return redirect("inference:score_run_detail", pk=run.pk)
    return render(request, "inference/score_run_form.html", {"form": form})


def _failures(run_id: int, limit: int) -> list[dict]:
    return [
        {
            "id": s.pk,
            "output": s.output_id,
            "model": s.output.endpoint.name,
            "prompt": s.output.prompt.text[:300],
            "attempts": s.attempts,
            "error": s.last_error[:1000],
        }
        for s in score_selectors.score_run_failures(run_id=run_id, limit=limit)
    ]


@role_required("researcher")
def score_run_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    """A score run's live progress, its tally per category, first failures and latest scores."""
    run = get_object_or_404(
        ScoreRun.objects.select_related(
            "scorer__scheme", "scorer__endpoint", "generation_run", "campaign", "created_by"
        ),
        pk=pk,
    )
    return render(
        request,
        "inference/score_run_detail.html",
        {
            "run": run,
            "progress": score_run_progress(run_id=run.pk),
            "unparseable": score_selectors.score_run_unparseable_count(run_id=run.pk),
            "categories": score_selectors.score_run_categories(run_id=run.pk),
            "failures": _failures(run.pk, 10),
            "scores": score_selectors.score_run_latest(run_id=run.pk),
            "can_manage": user_is_admin(request.user),
        },
    )


@role_required("researcher")
def score_run_progress_view(request: HttpRequest, pk: int) -> JsonResponse:
    """The score run's progress as JSON (polled by its page), with unparseable scores and first failures."""
    progress = score_run_progress(run_id=pk)
    if progress is None:
        raise Http404
    return JsonResponse(
        {
            **progress.as_dict(),
            "unparseable": score_selectors.score_run_unparseable_count(run_id=pk),
            "failures": _failures(pk, 10),
        }
    )


def _score_run_action(request: HttpRequest, pk: int, action, verb: str) -> HttpResponse:
    run = get_object_or_404(ScoreRun, pk=pk)
    try:
        count = action(
            run=run, actor=request.user, **({} if action is run_cancel else {"dispatch": _has_broker()})
        )
    except AuditError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{verb}: {count} scores.")
        if action is not run_cancel and not _has_broker():
            _no_broker_message(request, run)
    return redirect("inference:score_run_detail", pk=pk)


@require_POST
@role_required("admin")
def score_run_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Cancel the score run."""
    return _score_run_action(request, pk, run_cancel, "Cancelled")


@require_POST
@role_required("admin")
def score_run_resume_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue the unfinished scores again."""
    return _score_run_action(request, pk, run_resume, "Resumed")


@require_POST
@role_required("admin")
def score_run_retry_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue the failed scores again."""
    return _score_run_action(request, pk, run_retry, "Retrying")
