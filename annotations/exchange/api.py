"""API of exports: labels, or outputs with their final label, streamed as CSV, JSONL or Parquet."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.core.api_errors import ApiErrorSerializer
from annotations.core.ids import MAX_ID
from annotations.core.permissions import IsResearcherRole
from annotations.core.uploads import upload_read, upload_rows_read
from annotations.exchange.exports import (
    MEDIA_TYPES,
    ExportFormat,
    ExportKind,
    export_open,
    export_streaming_response,
)
from annotations.exchange.label_imports import (
    ImportMapping,
    category_spec_parse,
    labelled_data_import,
)
from annotations.models import Campaign


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
        return export_streaming_response(export)


_COLUMN = {"max_length": 200, "required": False}


class LabelImportSerializer(serializers.Serializer):
    """An upload of labelled rows and how to read them."""

    file = serializers.FileField(help_text="CSV (with a header) or JSONL, one row per label.")
    campaign = serializers.CharField(max_length=200, help_text="Name of the campaign to create.")
    scheme = serializers.CharField(
        max_length=64, default="qos-six", help_text="Key of an existing scheme, or of the one declared."
    )
    categories = serializers.ListField(
        child=serializers.CharField(max_length=300),
        required=False,
        max_length=9,
        help_text="Declare a new scheme: one `key:Name[:refusal,harmful]` per category, in order.",
    )
    prompt_column = serializers.CharField(default="prompt", max_length=200)
    model_column = serializers.CharField(default="model", max_length=200)
    output_column = serializers.CharField(default="output", max_length=200)
    annotator_column = serializers.CharField(default="annotator", max_length=200)
    label_column = serializers.CharField(default="label", max_length=200)
    note_column = serializers.CharField(default="note", max_length=200)
    sample_column = serializers.CharField(default="sample", max_length=200)
    group_column = serializers.CharField(allow_blank=True, default="", **_COLUMN)
    axis = serializers.CharField(
        allow_blank=True, default="", help_text="Axis of the group column.", **_COLUMN
    )
    member_column = serializers.CharField(allow_blank=True, default="", **_COLUMN)
    template_column = serializers.CharField(allow_blank=True, default="", **_COLUMN)
    attribute_columns = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, max_length=50
    )
    labels_per_output = serializers.IntegerField(required=False, min_value=1, max_value=50)
    final_rule = serializers.ChoiceField(
        choices=Campaign.FinalRule.choices, default=Campaign.FinalRule.ADJUDICATE
    )


def label_import_run(*, actor, data: dict):
    """Read the validated upload (size checked once, here) and import it (the API and the HTML page)."""
    upload = data["file"]
    records = upload_rows_read(data=upload_read(upload), filename=upload.name or "")
    mapping = ImportMapping(
        **{name: data[name] for name in ImportMapping.__dataclass_fields__ if name != "attribute_columns"},
        attribute_columns=tuple(data.get("attribute_columns") or ()),
    )
    return labelled_data_import(
        actor=actor,
        records=records,
        campaign_name=data["campaign"],
        scheme_key=data["scheme"],
        categories=[category_spec_parse(text) for text in data.get("categories") or []],
        mapping=mapping,
        labels_per_output=data.get("labels_per_output"),
        final_rule=data["final_rule"],
        source=upload.name or "",
    )


class LabelImportCreateApi(APIView):
    """Import labelled data; all or nothing, with every problem reported by row and column."""

    permission_classes = (IsResearcherRole,)
    parser_classes = (MultiPartParser, FormParser)

    @extend_schema(
        request={"multipart/form-data": LabelImportSerializer},
        responses={
            201: inline_serializer(
                "LabelImportResult",
                {
                    "campaign_id": serializers.IntegerField(),
                    "prompt_set_id": serializers.IntegerField(),
                    "run_id": serializers.IntegerField(),
                    "scheme_key": serializers.CharField(),
                    "outputs": serializers.IntegerField(),
                    "labels": serializers.IntegerField(),
                    "annotators": serializers.IntegerField(),
                    "items_complete": serializers.IntegerField(),
                    "items_disputed": serializers.IntegerField(),
                },
            ),
            400: ApiErrorSerializer,
        },
        operation_id="labels_import",
    )
    def post(self, request):
        """Create a campaign with its outputs, annotators and labels from the uploaded rows."""
        serializer = LabelImportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = label_import_run(actor=request.user, data=serializer.validated_data)
        return Response(result.__dict__, status=status.HTTP_201_CREATED)
