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
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from annotations.core.decorators import role_required
from annotations.core.exceptions import AuditError, NotFoundError
from annotations.core.roles import user_is_admin
from annotations.core.uploads import upload_read
from annotations.library.importers import FORMATS
from annotations.library.promptsets import promptset_build, promptset_plan, promptset_revise
from annotations.library.selectors import (
    PromptPaginator,
    group_choices,
    group_list,
    prompt_search,
    promptset_counts,
    promptset_get,
    promptset_group_choices,
    promptset_list,
    template_list,
)
from annotations.library.services import (
    ImportPlan,
    group_import,
    group_upload_check,
    template_import,
    template_upload_check,
)
from annotations.models import PromptSet

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
                content=upload_read(upload),
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


PAGE_SIZE = 50


class PromptSetForm(forms.Form):
    """Name, description, and the templates and groups to cross."""

    name = forms.CharField(label="Prompt set name", max_length=200, required=False)
    description = forms.CharField(
        label="Description", required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    all_templates = forms.BooleanField(label="All templates (including ones added later)", required=False)
    templates = forms.MultipleChoiceField(
        label="Templates", required=False, widget=forms.CheckboxSelectMultiple
    )
    groups = forms.MultipleChoiceField(
        label="Groups (every member is used)", widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["templates"].choices = [
            (key, f"{key}: {text}") for key, text in template_list().values_list("key", "text")
        ]
        self.fields["groups"].choices = [
            (ref, f"{label} ({count} members)") for ref, label, count in group_choices()
        ]

    def selection(self) -> tuple[list[str], list[str]]:
        """(template keys, group refs) as the services take them."""
        data = self.cleaned_data
        return (["*"] if data["all_templates"] else data["templates"]), data["groups"]


@role_required("researcher")
def promptset_list_view(request: HttpRequest) -> HttpResponse:
    """Every prompt set and version with its size and whether a run froze it."""
    return render(request, "annotations/promptset_list.html", {"prompt_sets": promptset_list()})


@role_required("admin")
@require_http_methods(["GET", "POST"])
def promptset_build_view(request: HttpRequest) -> HttpResponse:
    """Choose templates and groups, preview the count and a sample, then build."""
    return _edit(request, prompt_set=None)


@role_required("admin")
@require_http_methods(["GET", "POST"])
def promptset_revise_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Edit a set: rebuilt in place, or (when a run froze it) saved as the next version."""
    return _edit(request, prompt_set=_get(pk))


def _edit(request: HttpRequest, *, prompt_set: PromptSet | None) -> HttpResponse:
    initial = {}
    if prompt_set is not None:
        initial = {
            "name": prompt_set.name,
            "description": prompt_set.description,
            "templates": prompt_set.spec.get("templates", []),
            "groups": prompt_set.spec.get("groups", []),
        }
    form = PromptSetForm(request.POST or None, initial=initial)
    if prompt_set is not None:
        form.fields["name"].disabled = True
    context = {"form": form, "prompt_set": prompt_set}
    if request.method == "POST" and form.is_valid():
        template_keys, group_refs = form.selection()
        try:
            if request.POST.get("action") != "save":
                context["plan"] = promptset_plan(template_keys=template_keys, group_refs=group_refs)
            elif prompt_set is None:
                built = promptset_build(
                    name=form.cleaned_data["name"],
                    template_keys=template_keys,
                    group_refs=group_refs,
                    description=form.cleaned_data["description"],
                    actor=request.user,
                )
                messages.success(request, f"Built {built}.")
                return redirect("promptset_detail", pk=built.pk)
            else:
                revised = promptset_revise(
                    prompt_set=prompt_set,
                    template_keys=template_keys,
                    group_refs=group_refs,
                    description=form.cleaned_data["description"],
                    actor=request.user,
                )
                messages.success(
                    request,
                    f"Saved as {revised} (the previous version is frozen)."
                    if revised.pk != prompt_set.pk
                    else f"Rebuilt {revised}.",
                )
                return redirect("promptset_detail", pk=revised.pk)
        except AuditError as exc:
            context.update(detail=exc.message, errors=exc.errors)
            return render(request, "annotations/promptset_build.html", context, status=400)
    return render(request, "annotations/promptset_build.html", context)


def _get(pk: int) -> PromptSet:
    try:
        return promptset_get(prompt_set_id=pk)
    except NotFoundError:
        raise Http404("No such prompt set.") from None


@role_required("researcher")
def promptset_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    """One set: what it is, its versions, and its prompts counted per group and per template."""
    prompt_set = _get(pk)
    return render(
        request,
        "annotations/promptset_detail.html",
        {
            "prompt_set": prompt_set,
            "counts": promptset_counts(prompt_set=prompt_set),
            "can_edit": user_is_admin(request.user),
        },
    )


@role_required("researcher")
def prompt_list_view(request: HttpRequest, pk: int) -> HttpResponse:
    """A set's prompts in order: search text or key, filter by group and template, paginated."""
    prompt_set = _get(pk)
    search = request.GET.get("q", "").strip()
    group_ref = request.GET.get("group", "").strip()
    template_key = request.GET.get("template", "").strip()
    prompts = prompt_search(
        prompt_set=prompt_set, search=search, group_ref=group_ref, template_key=template_key
    )
    paginator = PromptPaginator(prompts, PAGE_SIZE, is_whole_set=not (search or group_ref or template_key))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "annotations/prompt_list.html",
        {
            "prompt_set": prompt_set,
            "page": paginator.get_page(request.GET.get("page")),
            "search": search,
            "group_ref": group_ref,
            "template_key": template_key,
            "group_choices": promptset_group_choices(prompt_set=prompt_set),
            "query": query.urlencode(),
        },
    )
