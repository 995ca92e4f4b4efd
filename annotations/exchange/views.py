"""Export pages: choose what to export, then download it streamed."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from annotations.core.decorators import role_required
from annotations.core.exceptions import AuditError
from annotations.exchange.api import LabelImportSerializer, label_import_run
from annotations.exchange.exports import ExportFormat, ExportKind, export_open, export_streaming_response
from annotations.models import Campaign, LabelScheme


@role_required("researcher")
def export_form_view(request: HttpRequest) -> HttpResponse:
    """The export form; submitting it (GET) downloads the file."""
    context = {
        "campaigns": Campaign.objects.only("id", "name").order_by("name"),
        "kinds": ExportKind.choices,
        "formats": ExportFormat.choices,
    }
    if "kind" not in request.GET:
        return render(request, "annotations/export_form.html", context)
    campaign = request.GET.get("campaign") or None
    try:
        if campaign is not None and not campaign.isdigit():
            raise AuditError("Choose a campaign from the list.")
        export = export_open(
            actor=request.user,
            kind=request.GET.get("kind", ""),
            file_format=request.GET.get("file_format", ""),
            campaign_id=int(campaign) if campaign else None,
        )
    except AuditError as exc:
        return render(request, "annotations/export_form.html", {**context, "error": exc.message}, status=400)
    return export_streaming_response(export)


def _form_data(request: HttpRequest) -> dict:
    data = {k: v for k, v in request.POST.items() if k not in {"categories", "attribute_columns"}}
    data["categories"] = [
        line.strip() for line in request.POST.get("categories", "").splitlines() if line.strip()
    ]
    data["attribute_columns"] = [
        c.strip() for c in request.POST.get("attribute_columns", "").split(",") if c.strip()
    ]
    if not data.get("labels_per_output"):
        data.pop("labels_per_output", None)
    if "file" in request.FILES:
        data["file"] = request.FILES["file"]
    return data


@role_required("researcher")
@require_http_methods(["GET", "POST"])
def label_import_view(request: HttpRequest) -> HttpResponse:
    """Upload a labelled dataset; errors are listed by row and column and nothing is saved."""
    context = {
        "schemes": LabelScheme.objects.order_by("name"),
        "final_rules": Campaign.FinalRule.choices,
        "values": request.POST,
    }
    if request.method == "POST":
        serializer = LabelImportSerializer(data=_form_data(request))
        if not serializer.is_valid():
            context["field_errors"] = {
                name: " ".join(str(m) for m in messages_) for name, messages_ in serializer.errors.items()
            }
            return render(request, "annotations/label_import.html", context, status=400)
        try:
            result = label_import_run(actor=request.user, data=serializer.validated_data)
        except AuditError as exc:
            context["error"] = exc
            return render(request, "annotations/label_import.html", context, status=400)
        messages.success(
            request,
            f"Imported {result.labels} labels of {result.outputs} outputs by {result.annotators} annotators "
            f"({result.items_complete} complete, {result.items_disputed} disputed).",
        )
        return redirect("label-import")
    return render(request, "annotations/label_import.html", context)
