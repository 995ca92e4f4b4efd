"""API views of scorers and score runs: the same roles as generation (researchers read, admins act)."""

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.core.api_errors import ApiErrorSerializer
from annotations.core.exceptions import NotFoundError
from annotations.core.permissions import IsAdminRole, IsResearcherRole, ResearcherReadAdminWrite
from inference import score_selectors
from inference.api.score_serializers import (
    ScorerCreateSerializer,
    ScorerSerializer,
    ScoreRunSerializer,
    ScoreRunStartSerializer,
    ScorerUpdateSerializer,
    ScoreSerializer,
)
from inference.models import Score, ScoreRun
from inference.selectors import score_run_progress
from inference.services.runs import run_cancel, run_resume, run_retry
from inference.services.scoring import score_run_start, scorer_create, scorer_update


def _has_broker() -> bool:
    return not settings.CELERY_TASK_ALWAYS_EAGER


class ScorerListApi(generics.ListCreateAPIView):
    """GET: the scorers with their versions; POST (admins): register one."""

    permission_classes = [ResearcherReadAdminWrite]
    serializer_class = ScorerSerializer

    def get_queryset(self):
        """Scorers by name with their run counts."""
        return score_selectors.scorer_list()

    @extend_schema(request=ScorerCreateSerializer, responses={201: ScorerSerializer, 400: ApiErrorSerializer})
    def post(self, request: Request, *args, **kwargs) -> Response:
        """Register a scorer through the service (a wrong configuration names its field: `config.…`)."""
        serializer = ScorerCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        scorer = scorer_create(actor=request.user, **serializer.validated_data)
        return Response(
            ScorerSerializer(score_selectors.scorer_list().get(pk=scorer.pk)).data,
            status=status.HTTP_201_CREATED,
        )


_SCORER_CHANGE = extend_schema(
    request=ScorerUpdateSerializer, responses={200: ScorerSerializer, 400: ApiErrorSerializer}
)


@extend_schema_view(put=_SCORER_CHANGE, patch=_SCORER_CHANGE)
class ScorerDetailApi(generics.RetrieveUpdateAPIView):
    """GET: one scorer; PATCH/PUT (admins): change its configuration (a new version), description or state.

    Name, kind, scheme and model are fixed at registration; PUT, like PATCH, changes only what it gives.
    """

    permission_classes = [ResearcherReadAdminWrite]
    serializer_class = ScorerSerializer

    def get_queryset(self):
        """Scorers with their run counts."""
        return score_selectors.scorer_list()

    def update(self, request: Request, *args, **kwargs) -> Response:
        """Change the scorer through the service."""
        scorer = self.get_object()
        serializer = ScorerUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        scorer_update(scorer=scorer, actor=request.user, **serializer.validated_data)
        return Response(ScorerSerializer(self.get_queryset().get(pk=scorer.pk)).data)


class ScoreRunListApi(generics.ListCreateAPIView):
    """GET: score runs with their score counts; POST (admins): start one."""

    permission_classes = [ResearcherReadAdminWrite]
    serializer_class = ScoreRunSerializer

    def get_queryset(self):
        """Score runs with counts (one query)."""
        return score_selectors.score_run_list()

    @extend_schema(
        request=ScoreRunStartSerializer, responses={201: ScoreRunSerializer, 400: ApiErrorSerializer}
    )
    def post(self, request: Request, *args, **kwargs) -> Response:
        """Create the run's scores and queue the chunk tasks (if a broker is configured)."""
        serializer = ScoreRunStartSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = score_run_start(actor=request.user, dispatch=_has_broker(), **serializer.service_arguments())
        data = ScoreRunSerializer(score_selectors.score_run_list().get(pk=run.pk)).data
        data["queued"] = _has_broker()
        return Response(data, status=status.HTTP_201_CREATED)


class ScoreRunDetailApi(generics.RetrieveAPIView):
    """GET: one score run with its counts."""

    permission_classes = [IsResearcherRole]
    serializer_class = ScoreRunSerializer

    def get_queryset(self):
        """Score runs with counts."""
        return score_selectors.score_run_list()


class ScoreRunProgressApi(APIView):
    """GET: the score run's progress (counts per status, unparseable scores, rate, time left)."""

    permission_classes = [IsResearcherRole]

    @extend_schema(responses={200: dict})
    def get(self, request: Request, pk: int) -> Response:
        """The progress from the scores' statuses."""
        progress = score_run_progress(run_id=pk)
        if progress is None:
            raise NotFoundError()
        return Response(
            {**progress.as_dict(), "unparseable": score_selectors.score_run_unparseable_count(run_id=pk)}
        )


class _ScoreRunActionApi(APIView):
    permission_classes = [IsAdminRole]
    apply = staticmethod(run_cancel)

    @extend_schema(request=None, responses={200: dict, 400: ApiErrorSerializer})
    def post(self, request: Request, pk: int) -> Response:
        """Apply the action; the answer says how many scores it touched."""
        run = get_object_or_404(ScoreRun, pk=pk)
        extra = {} if self.apply is run_cancel else {"dispatch": _has_broker()}
        count = self.apply(run=run, actor=request.user, **extra)
        return Response({"scores": count, "status": ScoreRun.objects.get(pk=pk).status})


class ScoreRunCancelApi(_ScoreRunActionApi):
    """POST (admins): cancel the score run."""

    apply = staticmethod(run_cancel)


class ScoreRunResumeApi(_ScoreRunActionApi):
    """POST (admins): queue pending, cancelled, failed and dead-worker scores again."""

    apply = staticmethod(run_resume)


class ScoreRunRetryApi(_ScoreRunActionApi):
    """POST (admins): queue the failed scores again."""

    apply = staticmethod(run_retry)


class ScoreRunScoreListApi(generics.ListAPIView):
    """GET: a score run's scores (paginated); ?status=done|failed|... filters."""

    permission_classes = [IsResearcherRole]
    serializer_class = ScoreSerializer

    def get_queryset(self):
        """The run's scores in output order."""
        if getattr(self, "swagger_fake_view", False):  # schema generation has no run id
            return Score.objects.none()
        run = get_object_or_404(ScoreRun, pk=self.kwargs["pk"])  # 404, not an empty page
        scores = score_selectors.score_run_scores(run_id=run.pk)
        wanted = self.request.query_params.get("status")
        return scores.filter(status=wanted) if wanted else scores

    @extend_schema(
        parameters=[
            OpenApiParameter("status", enum=Score.Status.values, description="Only scores in this status.")
        ]
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        """The page of scores."""
        return super().get(request, *args, **kwargs)
