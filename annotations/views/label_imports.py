"""The page to import labelled data (another tool's export, a benchmark's human labels)."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from annotations.api.label_imports import LabelImportSerializer, label_import_run
from annotations.decorators import role_required
from annotations.exceptions import AuditError
from annotations.models import Campaign, LabelScheme


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
