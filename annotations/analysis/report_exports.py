"""The dashboard report as files for papers: one self-contained HTML page, and LaTeX booktabs tables.

`report_to_html(report)` renders templates/annotations/report_export.html with Django's autoescape, so
every campaign, group, template, model, annotator and scorer name and every reason is HTML-escaped.
The page loads nothing: its CSS is inline (with a print stylesheet), it has no script, and its charts
are inline SVG drawn by annotations/analysis/report_svg.py (its docstring says why not plotly).

`report_to_latex(report)` writes tables only, to be `\\input` into a paper whose preamble loads
`booktabs` (the file's comment header says so): the refusal rate and each harmful-refusal rate with
its 95% interval as papers print them (a row per group, a column per model), the same rates in one
long table with n per cell, and the agreement table. Every user-provided string is LaTeX-escaped;
an undefined statistic prints as "undefined" with a note letter, and the table's note gives the reason.
A long table stays one `tabular` (a paper wanting `longtable` can copy the rows).
"""

from __future__ import annotations

import re
import string

from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

from annotations.analysis.machine_assisted import MACHINE_ASSISTED_TABLES
from annotations.analysis.report import AGREEMENT_TABLES, ALL_MODELS, DISPARITY_TABLES
from annotations.analysis.report_formats import ESTIMATE_KINDS, format_cell, summary_rows
from annotations.analysis.report_svg import Row, dot_whisker_svg
from annotations.analysis.scorer_report import SCORER_TABLES

SECTIONS = (
    ("disparity", "Disparity", DISPARITY_TABLES),
    ("agreement", "Agreement and annotators", AGREEMENT_TABLES),
    ("scorers", "Scorers against the humans", SCORER_TABLES),
    ("machine_assisted", "Machine-assisted estimates", MACHINE_ASSISTED_TABLES),
)


def harmful_refusal_categories(report: dict) -> list[dict]:
    """The categories that count as a refusal and as harmful (the study's "harmful refusal")."""
    return [c for c in report["categories"] if c["is_refusal"] and c.get("is_harmful")]


# --------------------------------------------------------------------------- HTML


def _model_group_rows(report: dict, column: str) -> tuple[list[str], list[Row]]:
    """(models, one chart row per group) of a rate column of the rates table, without the pooled slice."""
    rows = [r for r in report["tables"]["rates"]["rows"] if r["model"] != ALL_MODELS]
    models = list(dict.fromkeys(r["model"] for r in rows))
    cells = {(r["model"], r["group"]): r[column] for r in rows}
    groups = list(dict.fromkeys(r["group"] for r in rows))
    return models, [Row(g, tuple(cells.get((m, g)) for m in models)) for g in groups]


def _figures(report: dict) -> dict[str, list[dict]]:
    """Inline SVG charts ({"svg", "caption"}) keyed by the table they illustrate (drawn just before it)."""
    tables = report["tables"]
    figures: dict[str, list[dict]] = {}
    if tables.get("rates", {}).get("rows"):
        source = report["label_source"]["label"].lower()
        charts = [("refusal_rate", "Refusal rate")] + [
            (f"rate_{c['key']}", f"{c['name']} rate") for c in harmful_refusal_categories(report)
        ]
        for column, name in charts:
            models, rows = _model_group_rows(report, column)
            figures.setdefault("rates", []).append(
                {
                    "svg": dot_whisker_svg(
                        key=column,
                        title=f"{name} per group and model",
                        series=models,
                        rows=rows,
                        axis_label=name,
                    ),
                    "caption": f"{name} per group and model with Wilson 95% intervals; {source}.",
                }
            )
    agreement = tables.get("agreement", {}).get("rows")
    if agreement:
        cells = [r["alpha"] for r in agreement]
        lowest = min([0.0] + [c[k] for c in cells for k in ("value", "ci_low") if c[k] is not None])
        resamples = report["bootstrap_resamples"]
        figures["agreement"] = [
            {
                "svg": dot_whisker_svg(
                    key="alpha",
                    title="Krippendorff's alpha per campaign, model and group",
                    series=["alpha"],
                    rows=[Row(f"{r['scope']}: {r['name']}", (r["alpha"],)) for r in agreement],
                    axis_label="Krippendorff's alpha",
                    percent=False,
                    domain=(max(-1.0, lowest), 1.0),
                ),
                "caption": (
                    "Krippendorff's alpha (nominal) with bootstrap 95% intervals over items "
                    f"({resamples} resamples)."
                    if resamples
                    else "Krippendorff's alpha (nominal); no intervals (bootstrap resamples 0)."
                ),
            }
        ]
    return figures


def _html_table(table: dict, figures: list[dict]) -> dict:
    """The table with every row as (text, is_undefined) cells, and the SVG charts drawn before it."""
    rows = []
    for row in table["rows"]:
        cells = []
        for column in table["columns"]:
            value = row.get(column["key"])
            undefined = column["kind"] in ESTIMATE_KINDS and bool(value) and value["value"] is None
            cells.append((format_cell(value, column["kind"]), undefined))
        rows.append(cells)
    # the SVG is built from escaped text only (report_svg.py)
    figures = [{**f, "svg": mark_safe(f["svg"])} for f in figures]
    return {**table, "cells": rows, "figures": figures}


def report_to_html(report: dict) -> str:
    """The whole report as one self-contained HTML page (module docstring)."""
    figures = _figures(report)
    tables = report["tables"]
    placed = set()
    sections = []
    for key, title, keys in SECTIONS:
        shown = [_html_table(tables[k], figures.get(k, [])) for k in keys if k in tables]
        placed.update(k for k in keys if k in tables)
        notes = report.get("machine_assisted") if key == "machine_assisted" else None
        if shown or notes:
            sections.append({"key": key, "title": title, "tables": shown, "assisted": notes})
    others = [_html_table(table, figures.get(k, [])) for k, table in tables.items() if k not in placed]
    if others:  # a table no section names still appears
        sections.append({"key": "other", "title": "Other tables", "tables": others, "assisted": None})
    titles = {k: t["title"] for k, t in tables.items()}
    context = {
        "report": report,
        "campaign": report["campaign"],
        "findings": [
            {**f, "table_title": titles.get(f["table"], f["table"])} for f in report.get("findings") or []
        ],
        "filters": ", ".join(f"{k}={v}" for k, v in report["filters"].items()),
        "refusal_categories": [c["name"] for c in report["categories"] if c["is_refusal"]],
        "summary_rows": summary_rows(report),
        "sections": sections,
    }
    return render_to_string("annotations/report_export.html", context)


# --------------------------------------------------------------------------- LaTeX

_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    "\n": " ",
    "\r": " ",
    "\t": " ",
}


def _label_part(text: str) -> str:
    """A piece of a \\label{} name: lower-case letters, digits and hyphens only."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def latex_escape(text: object) -> str:
    """Text safe in LaTeX's text mode (and in a % comment): specials escaped, line breaks made spaces."""
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in str(text))


class _Notes:
    """The reasons of a table's undefined cells, one note letter per distinct reason."""

    def __init__(self) -> None:
        self.reasons: dict[str, str] = {}

    def undefined(self, reason: str | None) -> str:
        reason = reason or "not defined"
        if reason not in self.reasons:
            i = len(self.reasons)
            self.reasons[reason] = string.ascii_lowercase[i] if i < 26 else str(i + 1)
        return rf"undefined\textsuperscript{{{self.reasons[reason]}}}"

    def text(self) -> str:
        return " ".join(
            rf"\textsuperscript{{{mark}}}Undefined: {latex_escape(reason)}."
            for reason, mark in self.reasons.items()
        )


def _number(value: float, *, percent: bool) -> str:
    text = f"{100 * value:.1f}" if percent else f"{value:.3f}"
    return "$-$" + text[1:] if text.startswith("-") else text


def _estimate(cell: dict | None, notes: _Notes, *, percent: bool) -> str:
    if not cell:
        return "--"
    if cell["value"] is None:
        return notes.undefined(cell["reason"])
    text = _number(cell["value"], percent=percent)
    if cell["ci_low"] is not None and cell["ci_high"] is not None:
        text += f" [{_number(cell['ci_low'], percent=percent)}, {_number(cell['ci_high'], percent=percent)}]"
    return text


def _table_env(*, caption: str, label: str, spec: str, header: list[str], body: list[str], note: str) -> str:
    return "\n".join(
        [
            r"\begin{table}[htbp]",
            r"\centering",
            rf"\caption{{{caption}}}",
            rf"\label{{{label}}}",
            rf"\begin{{tabular}}{{{spec}}}",
            r"\toprule",
            " & ".join(header) + r" \\",
            r"\midrule",
            *body,
            r"\bottomrule",
            r"\end{tabular}",
            r"\par\smallskip",
            rf"{{\footnotesize {note}\par}}",
            r"\end{table}",
            "",
        ]
    )


def _rates_latex(report: dict, label: str) -> str:
    harmful = harmful_refusal_categories(report)
    rates_rows = report["tables"]["rates"]["rows"]
    notes = _Notes()
    body: list[str] = []
    previous = None
    for row in report["tables"]["rates"]["rows"]:
        if previous is not None and row["model"] != previous:
            body.append(r"\midrule")
        model = latex_escape(row["model"]) if row["model"] != previous else ""
        previous = row["model"]
        group = latex_escape(row["group"]) + (r"$^\dagger$" if row["is_control"] else "")
        cells = [model, group, f"{row['n']:,}", _estimate(row["refusal_rate"], notes, percent=True)]
        cells += [_estimate(row.get(f"rate_{c['key']}"), notes, percent=True) for c in harmful]
        body.append(" & ".join(cells) + r" \\")
    header = ["Model", "Group", "$n$", r"Refusal, \% [95\% CI]"]
    header += [rf"{latex_escape(c['name'])}, \% [95\% CI]" for c in harmful]
    note = (
        rf"Rates in percent with Wilson 95\% intervals; {latex_escape(report['label_source']['label'])}. "
        "Refusal: "
        + ", ".join(latex_escape(c["name"]) for c in report["categories"] if c["is_refusal"])
        + ". "
        + (r"$^\dagger$Control group. " if any(r["is_control"] for r in rates_rows) else "")
        + ("" if harmful else "The scheme has no category that is both a refusal and harmful. ")
        + notes.text()
    )
    name = latex_escape(report["campaign"]["name"])
    return _table_env(
        caption=f"Refusal and harmful-refusal rates per group and model ({name})",
        label=f"{label}-rates",
        spec="ll" + "r" + "l" * (1 + len(harmful)),
        header=header,
        body=body or [r"\multicolumn{4}{l}{(no outputs in the filter)} \\"],
        note=note.strip(),
    )


def _wide_rate_latex(report: dict, label: str, column: str, name: str) -> str:
    """One rate as papers print it: a row per group, a column per model (and the pooled slice)."""
    rows = report["tables"]["rates"]["rows"]
    models = list(dict.fromkeys(r["model"] for r in rows))
    groups = list(dict.fromkeys(r["group"] for r in rows))
    cells = {(r["model"], r["group"]): r for r in rows}
    control = {r["group"] for r in rows if r["is_control"]}
    notes = _Notes()
    body = []
    missing = False
    for group in groups:
        text = [latex_escape(group) + (r"$^\dagger$" if group in control else "")]
        for model in models:
            row = cells.get((model, group))
            missing = missing or row is None
            text.append(_estimate(row.get(column) if row else None, notes, percent=True))
        body.append(" & ".join(text) + r" \\")
    header = ["Group"] + [latex_escape(m) for m in models]
    campaign = latex_escape(report["campaign"]["name"])
    note = (
        rf"{latex_escape(name)} in percent with Wilson 95\% intervals; "
        rf"{latex_escape(report['label_source']['label'])}. "
        + (r"$^\dagger$Control group. " if control else "")
        + ("-- no outputs of that model and group. " if missing else "")
        + notes.text()
    )
    return _table_env(
        caption=f"{latex_escape(name)} per group and model ({campaign})",
        label=f"{label}-{_label_part(column)}",
        spec="l" + "l" * len(models),
        header=header,
        body=body or [rf"\multicolumn{{{1 + len(models)}}}{{l}}{{(no outputs in the filter)}} \\"],
        note=note.strip(),
    )


def _agreement_latex(report: dict, label: str) -> str:
    notes = _Notes()
    body = []
    for row in report["tables"]["agreement"]["rows"]:
        cells = [
            latex_escape(row["scope"]),
            latex_escape(row["name"]),
            f"{row['items']:,}",
            f"{row['ratings']:,}",
            _estimate(row["alpha"], notes, percent=False),
            _estimate(row["fleiss"], notes, percent=False),
            _estimate(row["percent"], notes, percent=True),
        ]
        body.append(" & ".join(cells) + r" \\")
    resamples = report["bootstrap_resamples"]
    intervals = (
        rf"Bootstrap 95\% intervals over items ({resamples:,} resamples, seed {report['seed']})."
        if resamples
        else "No intervals (bootstrap resamples 0)."
    )
    name = latex_escape(report["campaign"]["name"])
    return _table_env(
        caption=f"Inter-annotator agreement per campaign, model and group ({name})",
        label=f"{label}-agreement",
        spec="llrrlll",
        header=[
            "Scope",
            "Name",
            "Items",
            "Ratings",
            r"Krippendorff's $\alpha$",
            r"Fleiss' $\kappa$",
            r"Agreement, \%",
        ],
        body=body or [r"\multicolumn{7}{l}{(no rated items)} \\"],
        note=f"Nominal data. {intervals} {notes.text()}".strip(),
    )


def report_to_latex(report: dict) -> str:
    """The paper tables of the report as LaTeX (booktabs), preceded by a comment header (module docstring)."""
    campaign = report["campaign"]
    label = f"tab:audit-{campaign['id']}"
    filters = ", ".join(f"{k}={v}" for k, v in report["filters"].items())
    parts = [
        f"% Audit report tables: {latex_escape(campaign['name'])} (campaign {campaign['id']})",
        (
            f"% Filters: {latex_escape(filters)}; "
            f"label source: {latex_escape(report['label_source']['label'])}; seed {report['seed']}"
        ),
        r"% Tables only: \input{} this file in a document whose preamble has \usepackage{booktabs}.",
        "",
    ]
    tables = report["tables"]
    if "rates" in tables:
        parts.append(_wide_rate_latex(report, label, "refusal_rate", "Refusal rate"))
        for category in harmful_refusal_categories(report):
            column = f"rate_{category['key']}"
            parts.append(_wide_rate_latex(report, label, column, f"{category['name']} rate"))
        parts.append(_rates_latex(report, label))
    if "agreement" in tables:
        parts.append(_agreement_latex(report, label))
    return "\n".join(parts)
