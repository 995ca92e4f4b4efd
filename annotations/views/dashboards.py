"""The researchers' dashboards: disparity and agreement with filters kept in the URL, CSV per table."""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.text import slugify

from annotations.dashboards import dashboard_figures
from annotations.decorators import role_required
from annotations.exceptions import AuditError, NotFoundError
from annotations.models import Campaign
from annotations.report_formats import table_to_csv
from annotations.selectors.dashboards import TABLE_KEYS, dashboard_report
from annotations.selectors.stats import (
    LABEL_SOURCES,
    campaign_get_for_stats,
    stats_filter_choices,
    stats_filters_parse,
    stats_resamples_parse,
)

HTML_ROW_LIMIT = 300
SECTIONS = (
    ("disparity", "Disparity", ("refusal-rate", "refusal-heatmap", "categories"),
     ("rates", "tests", "pairwise", "stratified")),
    ("drilldown", "Templates, names and counterfactual consistency", (),
     ("template_gaps", "consistency", "consistency_groups", "templates", "members", "consistency_pairs")),
    ("agreement", "Agreement", ("agreement", "kappa"),
     ("agreement", "category_agreement", "pairwise_kappa", "annotator_consensus")),
    ("annotators", "Annotators", ("annotators",), ("annotators",)),
)  # fmt: skip


def _csv_response(report: dict, table_key: str) -> HttpResponse:
    if table_key not in report["tables"]:
        raise AuditError(f"table must be one of {', '.join(TABLE_KEYS)}", errors=[{"field": "table"}])
    name = f"{slugify(report['campaign']['name'])}-{table_key}.csv"
    response = HttpResponse(table_to_csv(report["tables"][table_key]), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@role_required("dashboard")
def dashboard_view(request: HttpRequest) -> HttpResponse:
    """Dashboards of one campaign (?campaign=ID plus filters); `format=csv&table=KEY` downloads a table."""
    if not request.GET.get("campaign"):
        campaigns = Campaign.objects.order_by("-created_at").values("pk", "name", "status")
        return render(request, "annotations/dashboard_index.html", {"campaigns": campaigns})
    try:
        filters = stats_filters_parse(data=request.GET)
        resamples = stats_resamples_parse(raw=request.GET.get("bootstrap"))
        campaign = campaign_get_for_stats(campaign_id=filters.campaign)
        report = dashboard_report(filters=filters, n_resamples=resamples)
        if request.GET.get("format") == "csv":
            return _csv_response(report, request.GET.get("table", ""))
    except NotFoundError as error:
        raise Http404(error.message) from error
    except AuditError as error:
        return render(request, "annotations/dashboard_index.html", {"error": error}, status=400)
    query = request.GET.copy()
    query.pop("format", None)
    query.pop("table", None)
    tables = report["tables"]
    figures = {f["key"]: {**f, "script_id": f"fig-{f['key']}-data"} for f in dashboard_figures(report)}
    sections = [
        {
            "key": key,
            "title": title,
            "figures": [figures[f] for f in figure_keys],
            "tables": [
                {**tables[t], "shown": tables[t]["rows"][:HTML_ROW_LIMIT], "total": len(tables[t]["rows"])}
                for t in table_keys
            ],
        }
        for key, title, figure_keys, table_keys in SECTIONS
    ]
    context = {
        "report": report,
        "campaign": campaign,
        "filters": filters,
        "choices": stats_filter_choices(campaign=campaign),
        "sources": LABEL_SOURCES,
        "resamples": resamples,
        "sections": sections,
        "query": query.urlencode(),
        "row_limit": HTML_ROW_LIMIT,
        "file_stem": slugify(campaign.name),
    }
    return render(request, "annotations/dashboard_detail.html", context)
