"""API of exports: labels, or outputs with their final label, streamed as CSV, JSONL or Parquet."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.views import APIView

from annotations.api.permissions import IsResearcherRole
from annotations.ids import MAX_ID
from annotations.services.exports import MEDIA_TYPES, ExportFormat, ExportKind, export_open
from annotations.views.exports import streaming_export_response


class ExportQuerySerializer(serializers.Serializer):
    """The query string of an export."""

    file_format = serializers.ChoiceField(choices=ExportFormat.choices, default=ExportFormat.CSV)
    campaign = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)


class ExportDownloadApi(APIView):
    """Download labelled data; researchers and admins only. Each download is written to the audit log."""

    permission_classes = (IsResearcherRole,)

    @extend_schema(
        parameters=[
            OpenApiParameter("kind", str, OpenApiParameter.PATH, enum=ExportKind.values),
            ExportQuerySerializer,
        ],
        responses={(200, media.split(";")[0]): OpenApiTypes.BINARY for media in MEDIA_TYPES.values()},
        operation_id="export_download",
    )
    def get(self, request, kind: str):
        """Stream the export; `kind` is labels (one row per label) or outputs (one row per output)."""
        query = ExportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        export = export_open(
            actor=request.user,
            kind=kind,
            file_format=query.validated_data["file_format"],
            campaign_id=query.validated_data.get("campaign"),
        )
        return streaming_export_response(export)
