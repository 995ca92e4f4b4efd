"""HTML views of the inference app: endpoints, runs (with live progress) and imports.

Researchers read; admins register models, start, cancel, resume and retry runs, and import outputs.
"""

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from annotations.core.decorators import role_required
from annotations.core.exceptions import AuditError
from annotations.core.roles import user_is_admin
from annotations.core.uploads import upload_read
from inference import selectors
from inference.forms import EndpointForm, OutputImportForm, RunStartForm
from inference.models import GenerationRun, ModelEndpoint
from inference.services.endpoints import endpoint_check, endpoint_create, endpoint_update
from inference.services.imports import outputs_import
from inference.services.runs import run_cancel, run_resume, run_retry, run_start


def _has_broker() -> bool:
    return not settings.CELERY_TASK_ALWAYS_EAGER


def _no_broker_message(request: HttpRequest, run: GenerationRun) -> None:
    messages.warning(
        request,
        f"No task broker is configured (CELERY_BROKER_URL), so nothing generates in the background: "
        f"run `python manage.py generate --run {run.pk}` on this machine.",
    )


def _form_errors(form, exc: AuditError) -> None:
    for error in exc.errors or [{"field": None, "message": exc.message}]:
        field = error.get("field") if error.get("field") in form.fields else None
        form.add_error(field, error["message"])


@role_required("researcher")
def endpoint_list_view(request: HttpRequest) -> HttpResponse:
    """The registered models and what their servers said at the last connection test."""
    return render(
        request,
        "inference/endpoint_list.html",
        {
            "endpoints": selectors.endpoint_list(),
            "can_manage": user_is_admin(request.user),
            "check_minutes": max(1, round(settings.INFERENCE_ENDPOINT_CHECK_SECONDS / 60)),
        },
    )


@role_required("admin")
def endpoint_create_view(request: HttpRequest) -> HttpResponse:
    """Register a model endpoint."""
    form = EndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint = endpoint_create(actor=request.user, **form.values())
        except AuditError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, f"Model {endpoint.name} registered. Test the connection below.")
            return redirect("inference:endpoint_list")
    return render(request, "inference/endpoint_form.html", {"form": form, "endpoint": None})


@role_required("admin")
def endpoint_edit_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a model endpoint's settings (existing outputs keep theirs)."""
    endpoint = get_object_or_404(ModelEndpoint, pk=pk)
    form = EndpointForm(request.POST) if request.method == "POST" else EndpointForm.for_endpoint(endpoint)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint_update(endpoint=endpoint, actor=request.user, **form.values())
        except AuditError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, f"Model {endpoint.name} saved.")
            return redirect("inference:endpoint_list")
    return render(request, "inference/endpoint_form.html", {"form": form, "endpoint": endpoint})


@require_POST
@role_required("admin")
def endpoint_check_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Test the connection: call /v1/models on every replica and show what each said."""
    endpoint = get_object_or_404(ModelEndpoint, pk=pk)
    result = endpoint_check(endpoint=endpoint)
    if result["ok"]:
        messages.success(
            request, f"{endpoint.name}: every replica answers and serves {endpoint.served_model_name}."
        )
    else:
        messages.error(request, f"{endpoint.name}: the connection test failed (details below).")
    return redirect(f"{reverse('inference:endpoint_list')}#endpoint-{endpoint.pk}")


@role_required("researcher")
def run_list_view(request: HttpRequest) -> HttpResponse:
    """Every run with its counts per status."""
    return render(
        request,
        "inference/run_list.html",
        {"runs": selectors.run_list()[:200], "can_manage": user_is_admin(request.user)},
    )


@role_required("admin")
def run_create_view(request: HttpRequest) -> HttpResponse:
    """Start a run: its output rows are created now and the chunk tasks queued."""
    form = RunStartForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            run = run_start(
                prompt_set=data["prompt_set"],
                endpoints=data["endpoints"],
                samples_per_prompt=data["samples_per_prompt"],
                name=data["name"],
                chunk_size=data["chunk_size"],
                max_attempts=data["max_attempts"],
                actor=request.user,
                dispatch=_has_broker(),
            )
        except AuditError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, f"Run started: {run.outputs.count()} outputs to generate.")
            if not _has_broker():
                _no_broker_message(request, run)
            return redirect("inference:run_detail", pk=run.pk)
    return render(request, "inference/run_form.html", {"form": form})


@role_required("researcher")
def run_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    """A run's live progress, recent failures and latest outputs."""
    run = get_object_or_404(
        GenerationRun.objects.select_related("prompt_set", "created_by").prefetch_related("endpoints"), pk=pk
    )
    return render(
        request,
        "inference/run_detail.html",
        {
            "run": run,
            "progress": selectors.run_progress(run_id=run.pk),
            "failures": selectors.run_failures(run_id=run.pk),
            "outputs": selectors.run_outputs(run_id=run.pk)
            .filter(status="done")
            .order_by("-finished_at")[:10],
            "can_manage": user_is_admin(request.user),
        },
    )


@role_required("researcher")
def run_progress_view(request: HttpRequest, pk: int) -> JsonResponse:
    """The run's progress as JSON (polled by the run page), with its latest failures."""
    progress = selectors.run_progress(run_id=pk)
    if progress is None:
        raise Http404
    failures = [
        {
            "id": o.pk,
            "model": o.endpoint.name,
            "prompt": o.prompt.text[:300],
            "attempts": o.attempts,
            "error": o.last_error[:1000],
        }
        for o in selectors.run_failures(run_id=pk, limit=10)
    ]
    return JsonResponse({**progress.as_dict(), "failures": failures})


def _run_action(request: HttpRequest, pk: int, action, verb: str) -> HttpResponse:
    run = get_object_or_404(GenerationRun, pk=pk)
    try:
        count = action(
            run=run, actor=request.user, **({} if action is run_cancel else {"dispatch": _has_broker()})
        )
    except AuditError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{verb}: {count} outputs.")
        if action is not run_cancel and not _has_broker():
            _no_broker_message(request, run)
    return redirect("inference:run_detail", pk=pk)


@require_POST
@role_required("admin")
def run_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Cancel the run."""
    return _run_action(request, pk, run_cancel, "Cancelled")


@require_POST
@role_required("admin")
def run_resume_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue the unfinished outputs again."""
    return _run_action(request, pk, run_resume, "Resumed")


@require_POST
@role_required("admin")
def run_retry_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue the failed outputs again."""
    return _run_action(request, pk, run_retry, "Retrying")


@role_required("admin")
def run_import_view(request: HttpRequest) -> HttpResponse:
    """Import outputs generated elsewhere; every problem is listed with its row, nothing half-saved."""
    form = OutputImportForm(request.POST or None, request.FILES or None)
    errors: list[dict] = []
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            run = outputs_import(
                prompt_set=form.cleaned_data["prompt_set"],
                model_name=form.cleaned_data["model_name"],
                content=upload_read(upload),
                filename=upload.name,
                run_name=form.cleaned_data["run_name"],
                actor=request.user,
            )
        except AuditError as exc:
            form.add_error(None, exc.message)
            errors = exc.errors
        else:
            messages.success(request, f"Imported {run.outputs.count()} outputs.")
            return redirect("inference:run_detail", pk=run.pk)
    return render(request, "inference/run_import.html", {"form": form, "errors": errors})
