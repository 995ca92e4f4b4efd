"""REST API of the prompt library: templates, groups, uploads, prompt sets and their prompts.

Researchers read; admins upload and build. An upload with `dry_run=true` answers the preview (counts
and first rows) and saves nothing; a rejected upload answers 400 with every error (row, line, field).
"""

from functools import partial

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.core.api_errors import ApiErrorSerializer
from annotations.core.exceptions import AuditError
from annotations.core.permissions import ResearcherReadAdminWrite
from annotations.core.uploads import upload_read
from annotations.library.importers import FORMATS
from annotations.library.promptsets import promptset_build, promptset_plan, promptset_revise
from annotations.library.selectors import (
    PromptPaginator,
    group_list,
    prompt_search,
    promptset_counts,
    promptset_get,
    promptset_list,
    template_list,
)
from annotations.library.services import (
    group_import,
    group_upload_check,
    template_import,
    template_upload_check,
)
from annotations.models import Group, Prompt, PromptSet, PromptTemplate


class TemplateSerializer(serializers.ModelSerializer):
    """A template as stored."""

    class Meta:
        model = PromptTemplate
        fields = ("id", "key", "text", "slot", "topic", "target_group", "notes", "source", "created_at")


class MemberSerializer(serializers.Serializer):
    """A member: the value that fills the slot, and its attributes."""

    value = serializers.CharField()
    attributes = serializers.DictField()


class GroupSerializer(serializers.ModelSerializer):
    """A group with its axis and members."""

    axis = serializers.CharField(source="axis.key")
    axis_name = serializers.CharField(source="axis.name")
    ref = serializers.SerializerMethodField()
    members = MemberSerializer(many=True)

    class Meta:
        model = Group
        fields = ("id", "ref", "axis", "axis_name", "key", "name", "description", "is_control", "members")

    def get_ref(self, group: Group) -> str:
        """The reference prompt set builds use: axis/group."""
        return f"{group.axis.key}/{group.key}"


class UploadSerializer(serializers.Serializer):
    """A templates or groups file (multipart), its format if the name does not say it, and dry_run."""

    file = serializers.FileField(required=False)
    format = serializers.ChoiceField(choices=FORMATS, required=False)
    dry_run = serializers.BooleanField(default=False)


UPLOAD_RESULT = inline_serializer(
    "LibraryUploadResult",
    {
        "saved": serializers.BooleanField(),
        "kind": serializers.CharField(),
        "format": serializers.CharField(),
        "counts": serializers.DictField(child=serializers.IntegerField()),
        "preview": serializers.ListField(child=serializers.DictField()),
    },
)


@extend_schema(parameters=[OpenApiParameter("q", str, description="Search key, text, topic, target group.")])
class TemplateListApi(generics.ListAPIView):
    """Templates by key; `?q=` searches key, text, topic and target group."""

    permission_classes = (ResearcherReadAdminWrite,)
    serializer_class = TemplateSerializer

    def get_queryset(self):
        """Templates matching ?q=."""
        return template_list(search=self.request.query_params.get("q", "").strip())


class GroupListApi(generics.ListAPIView):
    """Groups by axis and key, with their members."""

    permission_classes = (ResearcherReadAdminWrite,)
    serializer_class = GroupSerializer

    def get_queryset(self):
        """Every group, members prefetched."""
        return group_list()


class _UploadApi(APIView):
    permission_classes = (ResearcherReadAdminWrite,)
    parser_classes = (MultiPartParser, FormParser)
    check = None
    save = None

    @extend_schema(
        request={"multipart/form-data": UploadSerializer},
        responses={200: UPLOAD_RESULT, 201: UPLOAD_RESULT, 400: ApiErrorSerializer},
    )
    def post(self, request: Request) -> Response:
        """Check the file; unless dry_run, save it. 400 with every error when it is rejected."""
        params = UploadSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        upload = params.validated_data.get("file")
        content = upload_read(upload)
        plan = type(self).check(
            content=content, filename=upload.name, fmt=params.validated_data.get("format")
        )
        if params.validated_data["dry_run"]:
            return Response({"saved": False, **plan.as_dict()})
        plan = type(self).save(plan=plan, actor=request.user, filename=upload.name)
        return Response({"saved": True, **plan.as_dict()}, status=status.HTTP_201_CREATED)


class TemplateImportApi(_UploadApi):
    """Upload templates (CSV, JSON or YAML): all saved, or none with the list of errors."""

    check = staticmethod(template_upload_check)
    save = staticmethod(template_import)


class GroupImportApi(_UploadApi):
    """Upload groups and members (CSV, JSON or YAML): all saved, or none with the list of errors."""

    check = staticmethod(group_upload_check)
    save = staticmethod(group_import)


class PromptSetSerializer(serializers.ModelSerializer):
    """A prompt set version with its size."""

    prompt_count = serializers.IntegerField(read_only=True)
    is_frozen = serializers.BooleanField(read_only=True)
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)

    class Meta:
        model = PromptSet
        fields = (
            "id",
            "name",
            "version",
            "description",
            "previous",
            "spec",
            "frozen_at",
            "is_frozen",
            "created_by",
            "created_at",
            "prompt_count",
        )


class PromptSetInputSerializer(serializers.Serializer):
    """What to build: templates (keys, or ["*"] for all) x groups ("axis/group" or "axis/*")."""

    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    templates = serializers.ListField(child=serializers.CharField(), allow_empty=False)
    groups = serializers.ListField(child=serializers.CharField(), allow_empty=False)
    dry_run = serializers.BooleanField(default=False)


class PromptSetDetailSerializer(PromptSetSerializer):
    """A prompt set with its counts per group and per template."""

    counts = serializers.DictField()

    class Meta(PromptSetSerializer.Meta):
        fields = (*PromptSetSerializer.Meta.fields, "counts")


class PromptSetPlanSerializer(serializers.Serializer):
    """A preview: the count, the first prompts, duplicate texts."""

    templates = serializers.ListField(child=serializers.CharField())
    groups = serializers.ListField(child=serializers.CharField())
    prompt_count = serializers.IntegerField()
    duplicate_count = serializers.IntegerField()
    duplicates = serializers.ListField(child=serializers.DictField())
    sample = serializers.ListField(child=serializers.DictField())


class PromptSerializer(serializers.ModelSerializer):
    """One prompt with the template, group, axis and member it came from."""

    template = serializers.CharField(source="template.key", default=None)
    axis = serializers.CharField(source="group.axis.key", default=None)
    group = serializers.CharField(source="group.key", default=None)
    group_name = serializers.CharField(source="group.name", default=None)
    member = serializers.CharField(source="member.value", default=None)

    class Meta:
        model = Prompt
        fields = (
            "id",
            "position",
            "key",
            "text",
            "template",
            "axis",
            "group",
            "group_name",
            "member",
            "attributes",
        )


class PromptSetListApi(generics.ListAPIView):
    """GET: every prompt set version. POST: build one (`dry_run` answers the count and a sample)."""

    permission_classes = (ResearcherReadAdminWrite,)
    serializer_class = PromptSetSerializer

    def get_queryset(self):
        """Sets with their prompt counts."""
        return promptset_list()

    @extend_schema(
        request=PromptSetInputSerializer,
        responses={200: PromptSetPlanSerializer, 201: PromptSetDetailSerializer, 400: ApiErrorSerializer},
    )
    def post(self, request: Request) -> Response:
        """Build (or preview) a prompt set."""
        serializer = PromptSetInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if data["dry_run"]:
            return Response(
                promptset_plan(template_keys=data["templates"], group_refs=data["groups"]).as_dict()
            )
        if not data.get("name"):
            raise AuditError(
                "The prompt set needs a name.",
                errors=[{"field": "name", "message": "This field is required."}],
            )
        prompt_set = promptset_build(
            name=data["name"],
            template_keys=data["templates"],
            group_refs=data["groups"],
            description=data.get("description", ""),
            actor=request.user,
        )
        return Response(_detail(prompt_set), status=status.HTTP_201_CREATED)


def _detail(prompt_set: PromptSet) -> dict:
    counts = promptset_counts(prompt_set=prompt_set)
    prompt_set.prompt_count = counts["total"]
    return {**PromptSetSerializer(prompt_set).data, "counts": counts}


class PromptSetDetailApi(APIView):
    """One prompt set with its counts per group and per template."""

    permission_classes = (ResearcherReadAdminWrite,)

    @extend_schema(responses={200: PromptSetDetailSerializer})
    def get(self, request: Request, pk: int) -> Response:
        """The set and its counts."""
        return Response(_detail(promptset_get(prompt_set_id=pk)))


class PromptSetReviseApi(APIView):
    """Revise a set: rebuilt in place, or (when frozen by a run) saved as version N+1."""

    permission_classes = (ResearcherReadAdminWrite,)

    @extend_schema(
        request=PromptSetInputSerializer,
        responses={200: PromptSetDetailSerializer, 201: PromptSetDetailSerializer, 400: ApiErrorSerializer},
    )
    def post(self, request: Request, pk: int) -> Response:
        """Rebuild or make a new version from the templates and groups given."""
        serializer = PromptSetInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        prompt_set = promptset_get(prompt_set_id=pk)
        revised = promptset_revise(
            prompt_set=prompt_set,
            template_keys=data["templates"],
            group_refs=data["groups"],
            description=data.get("description", prompt_set.description),
            actor=request.user,
        )
        code = status.HTTP_201_CREATED if revised.pk != prompt_set.pk else status.HTTP_200_OK
        return Response(_detail(revised), status=code)


class PromptPagination(PageNumberPagination):
    """Page-number pagination; an unfiltered prompt list is paged by position range (see PromptPaginator)."""

    def paginate_queryset(self, queryset, request, view=None):
        """Use PromptPaginator, told by the view whether the list is the whole set."""
        self.django_paginator_class = partial(PromptPaginator, is_whole_set=view.is_whole_set)
        return super().paginate_queryset(queryset, request, view)


@extend_schema(
    parameters=[
        OpenApiParameter("q", str, description="Search the text and the key."),
        OpenApiParameter("group", str, description="Only this group: axis/group, e.g. name/muslim."),
        OpenApiParameter("template", str, description="Only this template key."),
    ]
)
class PromptListApi(generics.ListAPIView):
    """A set's prompts in order; `?q=` searches text and key, `?group=axis/group`, `?template=<key>`."""

    permission_classes = (ResearcherReadAdminWrite,)
    serializer_class = PromptSerializer
    pagination_class = PromptPagination
    queryset = Prompt.objects.none()  # for the schema; get_queryset answers requests
    is_whole_set = True

    def get_queryset(self):
        """The set's prompts, filtered."""
        params = self.request.query_params
        filters = {
            "search": params.get("q", "").strip(),
            "group_ref": params.get("group", "").strip(),
            "template_key": params.get("template", "").strip(),
        }
        self.is_whole_set = not any(filters.values())
        return prompt_search(prompt_set=promptset_get(prompt_set_id=self.kwargs["pk"]), **filters)
