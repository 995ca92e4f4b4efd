"""Text forms of the dashboard report: cells as text, tables as CSV, the whole report as Markdown.

An undefined statistic is written "undefined (reason)" in text and left empty with its reason in a
`<column>_undefined_reason` column in CSV, never as 0 or 1.
"""

from __future__ import annotations

import csv
import io

# Kinds whose cells are {"value", "reason", "n", "ci_low", "ci_high"}: a rate, any estimate, a number
# of labels (one decimal).
ESTIMATE_KINDS = ("estimate", "rate", "labels")
_ESTIMATE_FORMATS = {"rate": "{:.1%}", "labels": "{:.1f}"}
_SCALARS = {
    "p": lambda v: "< 0.0001" if v < 1e-4 else f"{v:.4f}",
    "percent": lambda v: f"{v:.1%}",
    "float": lambda v: f"{v:.3f}",
    "bool": lambda v: "yes" if v else "no",
}


# The report's counts (report["summary"], keyed for the API) in words, for the dashboard and every text
# form. A count without an entry here is a programming error (summary_rows raises), not a run-together key.
SUMMARY_LABELS = {
    "items_in_filter": "Items in the filter",
    "items_fully_labelled": "Items fully labelled",
    "gold_items": "Gold items",
    "adjudicated_items": "Adjudicated items",
    "labels": "Labels",
    "items_with_final_label": "Items with a final label",
    "items_awaiting_adjudication": "Items awaiting adjudication",
    "units": "Units analysed (items, or labels under the per-label source)",
}


def summary_rows(report: dict) -> list[tuple[str, int]]:
    """(label, count) of every summary count, in the report's order."""
    return [(SUMMARY_LABELS[key], value) for key, value in report["summary"].items()]


def _estimate_text(value: dict, kind: str) -> str:
    if value["value"] is None:
        return f"undefined ({value['reason']})"
    fmt = _ESTIMATE_FORMATS.get(kind, "{:.3f}")
    text = fmt.format(value["value"])
    if value["ci_low"] is not None and value["ci_high"] is not None:
        text += f" [{fmt.format(value['ci_low'])}, {fmt.format(value['ci_high'])}]"
    return text


def format_cell(value, kind: str) -> str:
    """One table cell as text: estimates with their 95% interval, p-values, percentages."""
    if value is None:
        return ""
    if kind in ESTIMATE_KINDS:
        return _estimate_text(value, kind)
    return _SCALARS.get(kind, str)(value)


def table_csv_header(table: dict) -> list[str]:
    """CSV column names: an estimate column becomes value, interval bounds, n and undefined reason."""
    header = []
    for column in table["columns"]:
        key = column["key"]
        if column["kind"] in ESTIMATE_KINDS:
            header += [key, f"{key}_ci_low", f"{key}_ci_high", f"{key}_n", f"{key}_undefined_reason"]
        else:
            header.append(key)
    return header


def _csv_safe(value):
    # spreadsheet formula injection: group and template names are user-provided text
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def table_to_csv(table: dict) -> str:
    """The table as CSV text with full-precision numbers (see `table_csv_header`)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(table_csv_header(table))
    for row in table["rows"]:
        cells = []
        for column in table["columns"]:
            value = row.get(column["key"])
            if column["kind"] in ESTIMATE_KINDS:
                value = value or {}
                cells += [value.get(k) for k in ("value", "ci_low", "ci_high", "n", "reason")]
            else:
                cells.append(value)
        writer.writerow(["" if c is None else _csv_safe(c) for c in cells])
    return out.getvalue()


def _md_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def table_to_markdown(table: dict) -> str:
    """The table as a Markdown pipe table under its title."""
    lines = [f"### {table['title']}", ""]
    if not table["rows"]:
        return "\n".join([*lines, "(no rows)", ""])
    lines.append("| " + " | ".join(_md_escape(c["label"]) for c in table["columns"]) + " |")
    lines.append("|" + "---|" * len(table["columns"]))
    for row in table["rows"]:
        cells = [_md_escape(format_cell(row.get(c["key"]), c["kind"])) for c in table["columns"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join([*lines, ""])


def findings_to_markdown(report: dict) -> list[str]:
    """The headline findings (annotations/analysis/findings.py) as Markdown lines, each naming its table."""
    findings = report.get("findings") or []
    if not findings:
        return []
    titles = {key: table["title"] for key, table in report["tables"].items()}
    lines = ["## Headline findings", ""]
    for finding in findings:
        source = titles.get(finding["table"], finding["table"])
        lines.append(f"- {_md_escape(finding['text'])} (table: {_md_escape(source)})")
    return [*lines, ""]


def report_to_markdown(report: dict) -> str:
    """The whole report as Markdown: the headline findings, what was analysed, then every table."""
    filters = ", ".join(f"{k}={v}" for k, v in report["filters"].items())
    lines = [
        f"# Audit report: {_md_escape(report['campaign']['name'])}",
        "",
        *findings_to_markdown(report),
        "## What is analysed",
        "",
        f"- Filters: {filters}",
        f"- Label source: {report['label_source']['label']}",
        f"- Final-label rule when not adjudicated: {report['final_rule']}",
        f"- Bootstrap resamples (agreement CIs): {report['bootstrap_resamples']}, seed {report['seed']}",
        f"- Models: {', '.join(_md_escape(m) for m in report['models'])}",
        f"- Groups: {', '.join(_md_escape(g) for g in report['groups'])}",
        "- Refusal categories: " + ", ".join(c["name"] for c in report["categories"] if c["is_refusal"]),
        *(
            ["- **Labels were made with a scorer's suggestions shown** (not independent of that scorer)"]
            if report["campaign"].get("show_suggestions")
            else []
        ),
        "",
        "| Summary | Count |",
        "|---|---|",
        *[f"| {label} | {value:,} |" for label, value in summary_rows(report)],
        "",
    ]
    assisted = report.get("machine_assisted")
    if assisted:
        lines += [
            "## Machine-assisted estimates: what they assume",
            "",
            f"- Sampling plan: {assisted['sampling_plan_label']}",
            f"- Scorers: {', '.join(_md_escape(s) for s in assisted['scorers']) or 'none'}"
            + (f" ({assisted['scorer_choice']})" if assisted["scorer_choice"] else ""),
            *[f"- {_md_escape(text)}" for text in assisted["assumptions"]],
            "",
        ]
    for table in report["tables"].values():
        lines.append(table_to_markdown(table))
    return "\n".join(lines)
