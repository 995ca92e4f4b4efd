"""The researchers' dashboards: disparity and agreement with filters kept in the URL, CSV per table."""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.text import slugify

from annotations.analysis.figures import dashboard_figures
from annotations.analysis.machine_assisted_data import stats_scorer_parse
from annotations.analysis.report import TABLE_KEYS, dashboard_report
from annotations.analysis.report_exports import report_to_html, report_to_latex
from annotations.analysis.report_formats import ESTIMATE_KINDS, format_cell, summary_rows, table_to_csv
from annotations.analysis.selectors import (
    LABEL_SOURCES,
    stats_filters_parse,
    stats_resamples_parse,
)
from annotations.core.decorators import role_required
from annotations.core.exceptions import AuditError, NotFoundError
from annotations.models import Campaign

HTML_ROW_LIMIT = 100
SECTIONS = (
    ("disparity", "Disparity", ("refusal-rate", "refusal-heatmap", "categories"),
     ("rates", "tests", "pairwise", "stratified")),
    ("drilldown", "Templates, names and counterfactual consistency", (),
     ("template_gaps", "consistency", "consistency_groups", "templates", "members", "consistency_pairs")),
    ("attributes", "Name attributes within groups", (), ("attribute_tests", "member_attributes")),
    ("models", "Model-to-model comparison", ("model-slope",), ("model_changes", "model_interaction")),
    ("agreement", "Agreement", ("agreement", "kappa"),
     ("agreement", "category_agreement", "pairwise_kappa", "annotator_consensus")),
    ("annotators", "Annotators", ("annotators",), ("annotators",)),
    ("scorers", "Scorers against the humans", ("scorer-confusion",),
     ("scorers", "scorer_rates", "scorer_group_errors", "scorer_flags", "scorer_cells", "scorer_confusion")),
    ("machine_assisted", "Machine-assisted estimates", ("machine-assisted",),
     ("machine_assisted", "machine_assisted_differences")),
)  # fmt: skip


def _csv_response(report: dict, table_key: str) -> HttpResponse:
    if table_key not in report["tables"]:
        raise AuditError(f"table must be one of {', '.join(TABLE_KEYS)}", errors=[{"field": "table"}])
    name = f"{slugify(report['campaign']['name'])}-{table_key}.csv"
    response = HttpResponse(table_to_csv(report["tables"][table_key]), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


EXPORTS = {  # format= -> (renderer, content type, file extension)
    "html": (report_to_html, "text/html; charset=utf-8", "html"),
    "latex": (report_to_latex, "application/x-tex; charset=utf-8", "tex"),
}


def _export_response(report: dict, fmt: str) -> HttpResponse:
    render_report, content_type, extension = EXPORTS[fmt]
    stem = slugify(report["campaign"]["name"]) or f"campaign-{report['campaign']['id']}"
    response = HttpResponse(render_report(report), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{stem}-report.{extension}"'
    return response


def _html_table(table: dict) -> dict:
    """The table with its first HTML_ROW_LIMIT rows as (text, is_undefined) cells, formatted once here."""
    columns = table["columns"]
    shown = [
        [
            (
                format_cell(row.get(c["key"]), c["kind"]),
                c["kind"] in ESTIMATE_KINDS and bool(row.get(c["key"])) and row[c["key"]]["value"] is None,
            )
            for c in columns
        ]
        for row in table["rows"][:HTML_ROW_LIMIT]
    ]
    return {**table, "shown": shown, "total": len(table["rows"])}


@role_required("dashboard")
def dashboard_view(request: HttpRequest) -> HttpResponse:
    """Dashboards of one campaign (?campaign=ID plus filters); `format=csv&table=KEY` downloads a table."""
    if not request.GET.get("campaign"):
        campaigns = Campaign.objects.order_by("-created_at").values("pk", "name", "status")
        return render(request, "annotations/dashboard_index.html", {"campaigns": campaigns})
    try:
        filters = stats_filters_parse(data=request.GET)
        resamples = stats_resamples_parse(raw=request.GET.get("bootstrap"))
        scorer = stats_scorer_parse(raw=request.GET.get("scorer"))
        report = dashboard_report(filters=filters, n_resamples=resamples, scorer=scorer)
        if request.GET.get("format") == "csv":
            return _csv_response(report, request.GET.get("table", ""))
        if request.GET.get("format") in EXPORTS:
            return _export_response(report, request.GET["format"])
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
            "tables": [_html_table(tables[t]) for t in table_keys],
            "notes": report[key]["assumptions"] if key == "machine_assisted" else [],
        }
        for key, title, figure_keys, table_keys in SECTIONS
    ]
    context = {
        "report": report,
        "campaign": report["campaign"],
        "filters": filters,
        "choices": report["choices"],
        "campaigns": Campaign.objects.order_by("name").values_list("pk", "name"),
        "sources": LABEL_SOURCES,
        "resamples": resamples,
        "sections": sections,
        "summary_rows": summary_rows(report),
        "findings": report["findings"],
        "attribute_filter": ":".join(filters.attribute) if filters.attribute else "",
        "attribute_levels": sorted(
            {f"{r['attribute']}:{r['level']}" for r in tables.get("member_attributes", {}).get("rows", [])}
        ),
        "query": query.urlencode(),
        "row_limit": HTML_ROW_LIMIT,
        "file_stem": slugify(report["campaign"]["name"]),
    }
    return render(request, "annotations/dashboard_detail.html", context)
