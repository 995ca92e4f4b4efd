"""Export pages: choose what to export, then download it streamed."""

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render

from annotations.decorators import role_required
from annotations.exceptions import AuditError
from annotations.models import Campaign
from annotations.services.exports import ExportFormat, ExportKind, export_open


def streaming_export_response(export) -> StreamingHttpResponse:
    """A download response streaming the export's chunks."""
    response = StreamingHttpResponse(export.chunks, content_type=export.media_type)
    response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


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
    return streaming_export_response(export)
