"""Statistics API: disparity and agreement of a campaign, with the dashboards' filters.

GET /api/stats/disparity/?campaign=ID[&run=&model=&axis=&group=&template=&source=final|all]
GET /api/stats/agreement/?campaign=ID[&...&bootstrap=1000]
GET /api/stats/scorers/?campaign=ID[&...&bootstrap=1000]  (scorers against the human final labels)
GET /api/stats/machine-assisted/?campaign=ID[&...&scorer=ID]  (human-only, PPI++ and active estimates)
GET /api/stats/plan/?pilot=ID&scorer=ID[&half_width=0.03]  (human labels needed per model x group)
Undefined statistics are `{"value": null, "reason": "..."}`, never 0 or 1.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.analysis.machine_assisted import MACHINE_ASSISTED_TABLES
from annotations.analysis.machine_assisted_data import stats_scorer_parse
from annotations.analysis.planner import DEFAULT_HALF_WIDTH, label_plan, label_plan_inputs_parse
from annotations.analysis.report import AGREEMENT_TABLES, DISPARITY_TABLES, SCORER_TABLES, dashboard_report
from annotations.analysis.selectors import FILTER_FIELDS, stats_filters_parse, stats_resamples_parse
from annotations.core.permissions import HasDashboardAccess

_PARAMETERS = [
    OpenApiParameter("campaign", OpenApiTypes.INT, required=True, description="Campaign id."),
    *[
        OpenApiParameter(name, OpenApiTypes.INT, description=f"Only this {name} (id).")
        for name in FILTER_FIELDS
        if name != "campaign"
    ],
    OpenApiParameter("source", OpenApiTypes.STR, enum=["final", "all"], description="Label source."),
    OpenApiParameter(
        "attribute", OpenApiTypes.STR, description="Only names with this attribute level, KEY:LEVEL."
    ),
]


def _report_part(
    request: Request, tables: tuple[str, ...], resamples: int, part: str, scorer: int | None = None
) -> dict:
    filters = stats_filters_parse(data=request.query_params)
    report = dashboard_report(filters=filters, n_resamples=resamples, parts=(part,), scorer=scorer)
    return {
        **{k: v for k, v in report.items() if k != "tables"},
        "tables": {k: report["tables"][k] for k in tables},
    }


class StatsDisparityApi(APIView):
    """Refusal and category rates per group and model with intervals, tests and drill-downs."""

    permission_classes = [HasDashboardAccess]

    @extend_schema(parameters=_PARAMETERS, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        """The disparity tables for the filters."""
        return Response(_report_part(request, DISPARITY_TABLES, resamples=0, part="disparity"))


class StatsAgreementApi(APIView):
    """Agreement coefficients per campaign, model and group, pairwise kappa, annotator progress."""

    permission_classes = [HasDashboardAccess]

    @extend_schema(
        parameters=[
            *_PARAMETERS,
            OpenApiParameter("bootstrap", OpenApiTypes.INT, description="Resamples for intervals (0-10000)."),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request) -> Response:
        """The agreement tables for the filters."""
        resamples = stats_resamples_parse(raw=request.query_params.get("bootstrap"))
        return Response(_report_part(request, AGREEMENT_TABLES, resamples=resamples, part="agreement"))


class StatsScorersApi(APIView):
    """Scorers against the human final labels: agreement, per-group errors, refusal rates, flags."""

    permission_classes = [HasDashboardAccess]

    @extend_schema(
        parameters=[
            *_PARAMETERS,
            OpenApiParameter(
                "bootstrap", OpenApiTypes.INT, description="Resamples for kappa intervals (0-10000)."
            ),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request) -> Response:
        """The scorer validation tables for the filters."""
        resamples = stats_resamples_parse(raw=request.query_params.get("bootstrap"))
        return Response(_report_part(request, SCORER_TABLES, resamples=resamples, part="scorers"))


class StatsMachineAssistedApi(APIView):
    """Rates per model and group from few human labels and a scorer: human-only, PPI++ and active."""

    permission_classes = [HasDashboardAccess]

    @extend_schema(
        parameters=[
            *_PARAMETERS,
            OpenApiParameter(
                "scorer",
                OpenApiTypes.INT,
                description="Scorer id (its current version); default: the campaign's sampling scorer, "
                "else every scorer version with finished scores on the population.",
            ),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request) -> Response:
        """The machine-assisted tables, with the plan, scorers and assumptions under "machine_assisted"."""
        scorer = stats_scorer_parse(raw=request.query_params.get("scorer"))
        return Response(
            _report_part(
                request, MACHINE_ASSISTED_TABLES, resamples=0, part="machine_assisted", scorer=scorer
            )
        )


class StatsPlanApi(APIView):
    """Human labels needed per model x group for a target half-width: human only, PPI and active."""

    permission_classes = [HasDashboardAccess]

    @extend_schema(
        parameters=[
            OpenApiParameter("pilot", OpenApiTypes.INT, required=True, description="Pilot campaign id."),
            OpenApiParameter(
                "scorer", OpenApiTypes.INT, required=True, description="Scorer id (of the pilot's scheme)."
            ),
            OpenApiParameter(
                "half_width",
                OpenApiTypes.NUMBER,
                description=f"Target half-width in (0, 0.5] (default {DEFAULT_HALF_WIDTH}: +/-3 points).",
            ),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request) -> Response:
        """The plan per cell, its totals and a one-line summary."""
        inputs = label_plan_inputs_parse(data=request.query_params)
        return Response(label_plan(pilot=inputs.pilot, scorer=inputs.scorer, half_width=inputs.half_width))
