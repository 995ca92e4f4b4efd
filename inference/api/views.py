"""API views of the inference app: endpoints, runs, progress, run actions, imports, outputs."""

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.core.api_errors import ApiErrorSerializer
from annotations.core.exceptions import NotFoundError
from annotations.core.permissions import IsAdminRole, IsResearcherRole, ResearcherReadAdminWrite
from annotations.core.uploads import upload_read
from inference import selectors
from inference.api.serializers import (
    EndpointSerializer,
    OutputImportSerializer,
    OutputSerializer,
    RunSerializer,
    RunStartSerializer,
)
from inference.models import GenerationRun, ModelEndpoint, Output
from inference.services.endpoints import ENDPOINT_FIELDS, endpoint_check, endpoint_create, endpoint_update
from inference.services.imports import outputs_import
from inference.services.runs import run_cancel, run_resume, run_retry, run_start


def _has_broker() -> bool:
    return not settings.CELERY_TASK_ALWAYS_EAGER


def _endpoint_values(data) -> dict:
    return {key: data[key] for key in ENDPOINT_FIELDS if key in data}


class EndpointListApi(generics.ListCreateAPIView):
    """GET: the model endpoints; POST (admins): register one."""

    permission_classes = [ResearcherReadAdminWrite]
    serializer_class = EndpointSerializer

    def get_queryset(self):
        """All endpoints by name."""
        return selectors.endpoint_list()

    def create(self, request: Request, *args, **kwargs) -> Response:
        """Register an endpoint through the service (every problem reported at once)."""
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = endpoint_create(actor=request.user, **_endpoint_values(serializer.validated_data))
        return Response(EndpointSerializer(endpoint).data, status=status.HTTP_201_CREATED)


class EndpointDetailApi(generics.RetrieveUpdateAPIView):
    """GET: one endpoint; PATCH/PUT (admins): change its settings."""

    permission_classes = [ResearcherReadAdminWrite]
    serializer_class = EndpointSerializer
    queryset = ModelEndpoint.objects.all()

    def update(self, request: Request, *args, **kwargs) -> Response:
        """Change settings through the service."""
        endpoint = self.get_object()
        serializer = self.get_serializer(endpoint, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        endpoint = endpoint_update(
            endpoint=endpoint, actor=request.user, **_endpoint_values(serializer.validated_data)
        )
        return Response(EndpointSerializer(endpoint).data)


class EndpointCheckApi(APIView):
    """POST (admins): test the connection (GET /v1/models on every replica) and return what each said."""

    permission_classes = [IsAdminRole]

    @extend_schema(request=None, responses={200: dict})
    def post(self, request: Request, pk: int) -> Response:
        """Run the test and return its result."""
        return Response(endpoint_check(endpoint=get_object_or_404(ModelEndpoint, pk=pk)))


class RunListApi(generics.ListCreateAPIView):
    """GET: runs with their output counts; POST (admins): start a run."""

    permission_classes = [ResearcherReadAdminWrite]
    serializer_class = RunSerializer

    def get_queryset(self):
        """Runs with counts (one query plus the prefetched models)."""
        return selectors.run_list()

    @extend_schema(request=RunStartSerializer, responses={201: RunSerializer})
    def post(self, request: Request, *args, **kwargs) -> Response:
        """Create the run's outputs and queue the chunk tasks (if a broker is configured)."""
        serializer = RunStartSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = run_start(actor=request.user, dispatch=_has_broker(), **serializer.validated_data)
        data = RunSerializer(selectors.run_list().get(pk=run.pk)).data
        data["queued"] = _has_broker()
        return Response(data, status=status.HTTP_201_CREATED)


class RunDetailApi(generics.RetrieveAPIView):
    """GET: one run with its counts."""

    permission_classes = [IsResearcherRole]
    serializer_class = RunSerializer

    def get_queryset(self):
        """Runs with counts."""
        return selectors.run_list()


class RunProgressApi(APIView):
    """GET: the run's progress (counts per status, outputs per second, time left)."""

    permission_classes = [IsResearcherRole]

    @extend_schema(responses={200: dict})
    def get(self, request: Request, pk: int) -> Response:
        """The progress from the outputs' statuses."""
        progress = selectors.run_progress(run_id=pk)
        if progress is None:
            raise NotFoundError()
        return Response(progress.as_dict())


class _RunActionApi(APIView):
    permission_classes = [IsAdminRole]
    apply = staticmethod(run_cancel)

    @extend_schema(request=None, responses={200: dict})
    def post(self, request: Request, pk: int) -> Response:
        """Apply the action; the answer says how many outputs it touched."""
        run = get_object_or_404(GenerationRun, pk=pk)
        extra = {} if self.apply is run_cancel else {"dispatch": _has_broker()}
        count = self.apply(run=run, actor=request.user, **extra)
        return Response({"outputs": count, "status": GenerationRun.objects.get(pk=pk).status})


class RunCancelApi(_RunActionApi):
    """POST (admins): cancel the run."""

    apply = staticmethod(run_cancel)


class RunResumeApi(_RunActionApi):
    """POST (admins): queue pending, cancelled, failed and dead-worker outputs again."""

    apply = staticmethod(run_resume)


class RunRetryApi(_RunActionApi):
    """POST (admins): queue the failed outputs again."""

    apply = staticmethod(run_retry)


class RunImportApi(APIView):
    """POST (admins, multipart): import outputs from CSV or JSONL as a new run; all or nothing."""

    permission_classes = [IsAdminRole]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request=OutputImportSerializer, responses={201: RunSerializer, 400: ApiErrorSerializer})
    def post(self, request: Request) -> Response:
        """Validate every row, then save them all (or report every problem with its row)."""
        serializer = OutputImportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["file"]
        run = outputs_import(
            prompt_set=serializer.validated_data["prompt_set"],
            model_name=serializer.validated_data["model_name"],
            content=upload_read(upload),
            filename=upload.name,
            fmt=serializer.validated_data.get("format"),
            run_name=serializer.validated_data["run_name"],
            actor=request.user,
        )
        return Response(
            RunSerializer(selectors.run_list().get(pk=run.pk)).data, status=status.HTTP_201_CREATED
        )


class RunOutputListApi(generics.ListAPIView):
    """GET: a run's outputs with their provenance (paginated); ?status=done|failed|... filters."""

    permission_classes = [IsResearcherRole]
    serializer_class = OutputSerializer

    def get_queryset(self):
        """The run's outputs in prompt order."""
        if getattr(self, "swagger_fake_view", False):  # schema generation has no run id
            return Output.objects.none()
        run = get_object_or_404(GenerationRun, pk=self.kwargs["pk"])  # 404, not an empty page
        outputs = selectors.run_outputs(run_id=run.pk)
        wanted = self.request.query_params.get("status")
        return outputs.filter(status=wanted) if wanted else outputs
