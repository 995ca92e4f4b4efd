"""The prompt library in the browser: templates and groups (researchers read, admins upload).

Upload is check, preview, confirm. Between the preview and the confirmation the checked rows live in the
user's server-side session (database-backed), under a random token that the confirm form sends back;
the browser never carries the rows, so a tampered form cannot slip unchecked data in, and the file is
not sent twice. A confirmation whose token is not the one in the session (an old tab, a double submit)
is refused with "upload again". The rows of a file within the 5 MB limit fit comfortably in a session.
"""

import secrets

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from annotations.decorators import role_required
from annotations.exceptions import AuditError
from annotations.importers import FORMATS
from annotations.selectors.library import group_list, template_list
from annotations.services.library import (
    ImportPlan,
    group_import,
    group_upload_check,
    template_import,
    template_upload_check,
    upload_content,
)

PAGE_SIZE = 50
_KINDS = {
    "templates": (template_upload_check, template_import, "library_templates"),
    "groups": (group_upload_check, group_import, "library_groups"),
}


class UploadForm(forms.Form):
    """A templates or groups file and, optionally, its format when the extension does not say it."""

    file = forms.FileField(label="File (CSV, JSON or YAML, UTF-8)", required=False)
    format = forms.ChoiceField(
        label="Format",
        choices=[("", "From the file name"), *((f, f.upper()) for f in FORMATS)],
        required=False,
    )


@role_required("researcher")
def template_list_view(request: HttpRequest) -> HttpResponse:
    """Every template, searchable and paginated."""
    search = request.GET.get("q", "").strip()
    page = Paginator(template_list(search=search), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "annotations/template_list.html", {"page": page, "search": search})


@role_required("researcher")
def group_list_view(request: HttpRequest) -> HttpResponse:
    """Every axis, group and member with its attributes."""
    return render(request, "annotations/group_list.html", {"groups": group_list()})


@role_required("admin")
@require_http_methods(["GET", "POST"])
def library_upload_view(request: HttpRequest, kind: str) -> HttpResponse:
    """Upload templates or groups: check the file and show a preview, then save it on confirmation."""
    check, save, list_url = _KINDS[kind]
    session_key = f"library-upload-{kind}"
    context = {"kind": kind, "form": UploadForm()}
    if request.method == "POST" and request.POST.get("action") == "confirm":
        stored = request.session.pop(session_key, None)
        if not stored or not secrets.compare_digest(stored["token"], request.POST.get("token", "")):
            context["errors"] = [
                {"message": "This preview has expired or was replaced: upload the file again."}
            ]
            return render(request, "annotations/library_upload.html", context, status=400)
        try:
            plan = save(plan=ImportPlan(**stored["plan"]), actor=request.user, filename=stored["filename"])
        except AuditError as exc:
            context.update(detail=exc.message, errors=exc.errors)
            return render(request, "annotations/library_upload.html", context, status=400)
        messages.success(request, _saved_message(plan, stored["filename"]))
        return redirect(list_url)
    if request.method == "POST":
        form = UploadForm(request.POST, request.FILES)
        context["form"] = form
        upload = request.FILES.get("file")
        try:
            form.is_valid()
            plan = check(
                content=upload_content(upload=upload),
                filename=upload.name,
                fmt=form.cleaned_data.get("format") or None,
            )
        except AuditError as exc:
            context.update(detail=exc.message, errors=exc.errors)
            return render(request, "annotations/library_upload.html", context, status=400)
        token = secrets.token_urlsafe(24)
        request.session[session_key] = {
            "token": token,
            "filename": upload.name,
            "plan": {"kind": plan.kind, "format": plan.format, "rows": plan.rows, "counts": plan.counts},
        }
        context.update(
            plan=plan,
            counts=[(name.replace("_", " ").capitalize(), value) for name, value in plan.counts.items()],
            preview=plan.preview(),
            token=token,
            filename=upload.name,
        )
    return render(request, "annotations/library_upload.html", context)


def _saved_message(plan: ImportPlan, filename: str) -> str:
    c = plan.counts
    if plan.kind == "templates":
        return (
            f"Imported {filename}: {c['templates']} templates ({c['new']} new, {c['changed']} changed, "
            f"{c['unchanged']} unchanged)."
        )
    return (
        f"Imported {filename}: {c['members']} members in {c['groups']} groups on {c['axes']} axes "
        f"({c['new']} new, {c['changed']} changed, {c['unchanged']} unchanged)."
    )
