"""Plotly figures of the dashboard report, as JSON for plotly.js (served from our static files).

Every function takes the dict of `annotations.analysis.report.dashboard_report` and returns a
plotly figure as a JSON string. Undefined values are drawn as gaps (no bar, empty heatmap cell)
with the reason in the hover text, never as 0 or 1.
"""

from __future__ import annotations

import json

from annotations.analysis.report import ALL_MODELS

_AXIS = {"gridcolor": "#e5e5e5", "zerolinecolor": "#bbbbbb", "automargin": True}
_LAYOUT = {
    "paper_bgcolor": "#ffffff",
    "plot_bgcolor": "#ffffff",
    "margin": {"l": 60, "r": 20, "t": 60, "b": 60},
    "font": {"family": "system-ui, sans-serif", "size": 13},
    "legend": {"orientation": "h", "y": -0.2},
}
# Okabe-Ito: distinguishable with the common colour-vision deficiencies
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")


def _percent_text(cell: dict) -> str:
    if cell["value"] is None:
        return f"undefined ({cell['reason']})"
    text = f"{cell['value']:.1%}"
    if cell["ci_low"] is not None and cell["ci_high"] is not None:
        text += f" [{cell['ci_low']:.1%}, {cell['ci_high']:.1%}]"
    return f"{text}, n = {cell['n']}"


def _value_text(cell: dict) -> str:
    if cell["value"] is None:
        return f"undefined ({cell['reason']})"
    text = f"{cell['value']:.3f}"
    if cell["ci_low"] is not None and cell["ci_high"] is not None:
        text += f" [{cell['ci_low']:.3f}, {cell['ci_high']:.3f}]"
    return f"{text}, n = {cell['n']}"


def _error_bars(cells: list[dict]) -> dict:
    def gap(cell: dict, bound: str) -> float | None:
        if cell["value"] is None or cell[bound] is None:
            return None
        return abs(cell[bound] - cell["value"])

    return {
        "type": "data",
        "symmetric": False,
        "array": [gap(c, "ci_high") for c in cells],
        "arrayminus": [gap(c, "ci_low") for c in cells],
    }


def _figure(traces: list[dict], title: str, **layout) -> str:
    """A plotly figure (data + layout) as JSON; built as plain dicts, which plotly.js validates."""
    merged = {"title": {"text": title}, **_LAYOUT, **layout}
    for axis in ("xaxis", "yaxis", "yaxis2"):
        if axis in merged or axis != "yaxis2":
            merged[axis] = {**_AXIS, **merged.get(axis, {})}
    return json.dumps({"data": traces, "layout": merged}, allow_nan=False)


def _model_rows(report: dict) -> dict[str, list[dict]]:
    by_model: dict[str, list[dict]] = {}
    for row in report["tables"]["rates"]["rows"]:
        if row["model"] != ALL_MODELS:
            by_model.setdefault(row["model"], []).append(row)
    return by_model


def refusal_rate_figure(report: dict) -> str:
    """The headline: refusal rate per group, one bar per model, with Wilson 95% error bars."""
    traces = []
    for i, (model, rows) in enumerate(_model_rows(report).items()):
        cells = [r["refusal_rate"] for r in rows]
        traces.append(
            {
                "type": "bar",
                "name": model,
                "x": [r["group"] for r in rows],
                "y": [c["value"] for c in cells],
                "error_y": _error_bars(cells),
                "marker": {"color": PALETTE[i % len(PALETTE)]},
                "hovertext": [
                    f"{model} · {r['group']}: {_percent_text(c)}" for r, c in zip(rows, cells, strict=True)
                ],
                "hoverinfo": "text",
            }
        )
    return _figure(
        traces,
        f"Refusal rate per group and model (Wilson 95%; {report['label_source']['label'].lower()})",
        barmode="group",
        yaxis={"tickformat": ".0%", "title": {"text": "Refusal rate"}, "rangemode": "tozero"},
        xaxis={"title": {"text": "Group"}},
    )


def refusal_heatmap_figure(report: dict) -> str:
    """Group x model heatmap of the refusal rate; undefined cells stay empty."""
    by_model = _model_rows(report)
    models = list(by_model)
    groups = report["groups"]
    cells = {(r["model"], r["group"]): r["refusal_rate"] for rows in by_model.values() for r in rows}
    z, text = [], []
    for group in groups:
        z.append([cells[(m, group)]["value"] for m in models])
        text.append([_percent_text(cells[(m, group)]) for m in models])
    trace = {
        "type": "heatmap",
        "z": z,
        "x": models,
        "y": groups,
        "text": text,
        "hoverinfo": "text",
        "texttemplate": "%{z:.1%}",
        # plotly.js's named "Blues" runs dark to light; reversed, 0 is white and more is darker.
        "colorscale": "Blues",
        "reversescale": True,
        "zmin": 0,
        "colorbar": {"tickformat": ".0%", "title": {"text": "Refusal"}},
    }
    return _figure(
        [trace],
        "Refusal rate, group x model",
        xaxis={"title": {"text": "Model"}},
        yaxis={"title": {"text": "Group"}},
    )


def category_distribution_figure(report: dict) -> str:
    """Share of every category per group (and model), stacked to 100%."""
    by_model = _model_rows(report)
    x_models = [m for m, rows in by_model.items() for _ in rows]
    x_groups = [r["group"] for rows in by_model.values() for r in rows]
    traces = []
    for i, category in enumerate(report["categories"]):
        cells = [r[f"rate_{category['key']}"] for rows in by_model.values() for r in rows]
        traces.append(
            {
                "type": "bar",
                "name": category["name"] + (" (refusal)" if category["is_refusal"] else ""),
                "x": [x_models, x_groups],
                "y": [c["value"] for c in cells],
                "marker": {"color": PALETTE[i % len(PALETTE)]},
                "hovertext": [f"{category['name']}: {_percent_text(c)}" for c in cells],
                "hoverinfo": "text",
            }
        )
    return _figure(
        traces,
        "Distribution of categories per group and model",
        barmode="stack",
        yaxis={"tickformat": ".0%", "title": {"text": "Share of outputs"}, "range": [0, 1]},
    )


def agreement_figure(report: dict) -> str:
    """Krippendorff's alpha per campaign, model and group, with its bootstrap interval when computed."""
    rows = report["tables"]["agreement"]["rows"]
    cells = [r["alpha"] for r in rows]
    labels = [f"{r['scope']}: {r['name']}" for r in rows]
    trace = {
        "type": "bar",
        "x": labels,
        "y": [c["value"] for c in cells],
        "error_y": _error_bars(cells),
        "marker": {"color": [PALETTE[("campaign", "model", "group").index(r["scope"])] for r in rows]},
        "hovertext": [f"{label}: alpha {_value_text(c)}" for label, c in zip(labels, cells, strict=True)],
        "hoverinfo": "text",
    }
    return _figure(
        [trace],
        "Agreement overview: Krippendorff's alpha (nominal)",
        yaxis={"title": {"text": "alpha"}, "range": [min(0, *[c["value"] or 0 for c in cells]), 1]},
        showlegend=False,
    )


def kappa_heatmap_figure(report: dict) -> str:
    """Cohen's kappa for every pair of annotators over the whole (filtered) campaign."""
    annotators = report["annotators"]
    index = {name: i for i, name in enumerate(annotators)}
    size = len(annotators)
    z: list[list[float | None]] = [[None] * size for _ in range(size)]
    text = [["" for _ in range(size)] for _ in range(size)]
    for row in report["tables"]["pairwise_kappa"]["rows"]:
        if row["scope"] != "campaign":
            continue
        a, b = index[row["annotator_a"]], index[row["annotator_b"]]
        label = f"{row['annotator_a']} / {row['annotator_b']}: kappa {_value_text(row['kappa'])}"
        label += f", {row['shared']} shared items"
        for i, j in ((a, b), (b, a)):
            z[i][j] = row["kappa"]["value"]
            text[i][j] = label
    trace = {
        "type": "heatmap",
        "z": z,
        "x": annotators,
        "y": annotators,
        "text": text,
        "hoverinfo": "text",
        "texttemplate": "%{z:.2f}",
        "colorscale": "RdBu",
        "zmin": -1,
        "zmax": 1,
        "colorbar": {"title": {"text": "kappa"}},
    }
    return _figure([trace], "Pairwise Cohen's kappa between annotators", yaxis={"autorange": "reversed"})


def annotator_progress_figure(report: dict) -> str:
    """Labels per annotator, and accuracy on gold items with Wilson error bars."""
    rows = report["tables"]["annotators"]["rows"]
    names = [r["annotator"] for r in rows]
    gold = [r["gold_accuracy"] for r in rows]
    traces = [
        {
            "type": "bar",
            "name": "Labels",
            "x": names,
            "y": [r["labels"] for r in rows],
            "marker": {"color": PALETTE[0]},
        },
        {
            "type": "scatter",
            "name": "Gold accuracy",
            "x": names,
            "y": [c["value"] for c in gold],
            "error_y": _error_bars(gold),
            "mode": "markers",
            "marker": {"size": 11, "color": PALETTE[5], "symbol": "diamond"},
            "yaxis": "y2",
            "hovertext": [f"{n}: gold accuracy {_percent_text(c)}" for n, c in zip(names, gold, strict=True)],
            "hoverinfo": "text",
        },
    ]
    return _figure(
        traces,
        "Annotator progress and accuracy on gold items",
        yaxis={"title": {"text": "Labels"}, "rangemode": "tozero"},
        yaxis2={
            "title": {"text": "Gold accuracy"},
            "overlaying": "y",
            "side": "right",
            "range": [0, 1],
            "tickformat": ".0%",
        },
    )


def scorer_confusion_figure(report: dict) -> str:
    """One heatmap per scorer version: human final category (rows) x scorer category (columns)."""
    table = report["tables"].get("scorer_confusion")
    if not table or not table["rows"]:
        return _figure([], "Scorer confusion matrices (no scores on this campaign yet)")
    score_columns = [c for c in table["columns"] if c["key"].startswith("scorer_")]
    x = [c["label"].removeprefix("Scorer: ") for c in score_columns]
    scorers = list(dict.fromkeys(r["scorer"] for r in table["rows"]))
    traces = []
    for i, scorer in enumerate(scorers):
        rows = [r for r in table["rows"] if r["scorer"] == scorer]
        z = [[r[c["key"]] for c in score_columns] for r in rows]
        traces.append(
            {
                "type": "heatmap",
                "name": scorer,
                "z": z,
                "x": x,
                "y": [r["human_category"] for r in rows],
                "texttemplate": "%{z}",
                "colorscale": "Blues",
                "reversescale": True,
                "zmin": 0,
                "showscale": False,
                "visible": i == 0,
                "hovertemplate": "human %{y}<br>scorer %{x}<br>%{z} items<extra>" + scorer + "</extra>",
            }
        )
    buttons = [
        {
            "label": scorer,
            "method": "update",
            "args": [{"visible": [j == i for j in range(len(scorers))]}],
        }
        for i, scorer in enumerate(scorers)
    ]
    return _figure(
        traces,
        "Scorer against the humans: confusion matrix",
        xaxis={"title": {"text": "Scorer category"}},
        yaxis={"title": {"text": "Human final category"}, "autorange": "reversed"},
        updatemenus=[{"buttons": buttons, "direction": "down", "x": 1, "y": 1.15}]
        if len(scorers) > 1
        else [],
    )


_METHOD_STYLE = (  # (row key, legend name, marker symbol, colour, vertical offset)
    ("human", "Human labels only", "circle", PALETTE[0], -0.22),
    ("ppi", "PPI++", "diamond", PALETTE[1], 0.0),
    ("active", "Active inference", "square", PALETTE[2], 0.22),
)


def machine_assisted_forest_figure(report: dict) -> str:
    """Forest plot of the refusal rate per model x group: one marker per method with its 95% interval.

    One block of traces per scorer version (a menu switches between them); an undefined estimate
    has no marker, its reason is in the hover text of the methods that are drawn and in the table.
    """
    table = report["tables"].get("machine_assisted")
    rows = [r for r in (table["rows"] if table else []) if r["outcome_key"] == "refusal"]
    if not rows:
        return _figure([], "Machine-assisted refusal rates (no scored population yet)")
    scorers = list(dict.fromkeys(r["scorer"] for r in rows))
    traces = []
    labels: list[str] = []
    for i, scorer in enumerate(scorers):
        block = [r for r in rows if r["scorer"] == scorer]
        labels = labels or [f"{r['model']} · {r['group']}" for r in block]
        for key, name, symbol, colour, offset in _METHOD_STYLE:
            cells = [r[key] for r in block]
            traces.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    "name": name,
                    "x": [c["value"] for c in cells],
                    "y": [position + offset for position in range(len(block))],
                    "error_x": _error_bars(cells),
                    "marker": {"symbol": symbol, "size": 10, "color": colour},
                    "visible": i == 0,
                    "legendgroup": key,
                    "hovertext": [
                        f"{r['model']} · {r['group']}, {name}: {_percent_text(c)}"
                        for r, c in zip(block, cells, strict=True)
                    ],
                    "hoverinfo": "text",
                }
            )
    buttons = [
        {
            "label": scorer,
            "method": "update",
            "args": [{"visible": [j // len(_METHOD_STYLE) == i for j in range(len(traces))]}],
        }
        for i, scorer in enumerate(scorers)
    ]
    return _figure(
        traces,
        "Refusal rate per model and group: human labels only, PPI++ and active inference (95%)",
        xaxis={"tickformat": ".0%", "title": {"text": "Refusal rate"}},
        yaxis={
            "tickvals": list(range(len(labels))),
            "ticktext": labels,
            "autorange": "reversed",
            "zeroline": False,
        },
        height=max(360, 120 + 42 * len(labels)),
        legend={"orientation": "h", "y": -0.35},
        updatemenus=[{"buttons": buttons, "direction": "down", "x": 1, "y": 1.15}]
        if len(scorers) > 1
        else [],
    )


def model_slope_figure(report: dict) -> str:
    """Slope chart: each group's refusal rate across the models (one line per group, Wilson 95% bars),
    so a gap that closed after a model update shows as lines coming together."""
    by_model = _model_rows(report)
    models = list(by_model)
    groups = list(dict.fromkeys(r["group"] for rows in by_model.values() for r in rows))
    traces = []
    for i, group in enumerate(groups):
        cells = []
        for model in models:
            row = next((r for r in by_model[model] if r["group"] == group), None)
            empty = {"value": None, "reason": "no outputs", "ci_low": None, "ci_high": None, "n": 0}
            cells.append(row["refusal_rate"] if row else empty)
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": group,
                "x": models,
                "y": [c["value"] for c in cells],
                "error_y": _error_bars(cells),
                "line": {"color": PALETTE[i % len(PALETTE)]},
                "hovertext": [
                    f"{group} · {model}: {_percent_text(c)}" for model, c in zip(models, cells, strict=True)
                ],
                "hoverinfo": "text",
            }
        )
    title = "Refusal rate per group across models (Wilson 95%)"
    if len(models) < 2:
        title += ": one model in the filter, nothing to compare"
    return _figure(
        traces,
        title,
        yaxis={"tickformat": ".0%", "title": {"text": "Refusal rate"}, "rangemode": "tozero"},
        xaxis={"title": {"text": "Model"}, "type": "category"},
    )


FIGURES = (
    ("refusal-rate", "Refusal rate per group and model", refusal_rate_figure),
    ("refusal-heatmap", "Refusal rate heatmap", refusal_heatmap_figure),
    ("categories", "Category distribution", category_distribution_figure),
    ("model-slope", "Refusal rate per group across models (slope chart)", model_slope_figure),
    ("agreement", "Agreement overview", agreement_figure),
    ("kappa", "Pairwise kappa", kappa_heatmap_figure),
    ("annotators", "Annotator progress", annotator_progress_figure),
    ("scorer-confusion", "Scorer confusion matrix", scorer_confusion_figure),
    ("machine-assisted", "Machine-assisted refusal rates (forest plot)", machine_assisted_forest_figure),
)


def dashboard_figures(report: dict) -> list[dict]:
    """Every figure of the dashboard: [{"key", "title", "json"}] in page order."""
    return [{"key": key, "title": title, "json": build(report)} for key, title, build in FIGURES]
