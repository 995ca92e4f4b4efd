"""Headline findings: the few sentences a researcher reads first, computed from the report's own tables.

`headline_findings(report)` reads the tables `dashboard_report` built (never the database, never a
hand-written sentence), so a finding can only say what a table below it says, and links to that
table (`table`: its key, the page's anchor `t-<key>`). The findings, in order:

- per model, the groups whose refusal rate differs from the control group of their axis at 5% after
  Holm's correction across the model's group pairs (the `pairwise` table's `p_holm` and `reject`),
  with both rates (the `rates` table, Wilson 95%) and their ratio; or that none does, with the
  smallest adjusted p;
- the largest rate of a harmful refusal (a category that counts as a refusal and as harmful; the
  study's "harmful refusal") over the models' group cells, with its interval, or that there is none;
- per model, the templates with the largest gap between groups (`template_gaps`, top three with a gap
  above 0);
- the campaign's agreement: Krippendorff's alpha with its interval and Krippendorff's (2004) reading
  (>= 0.800 reliable; 0.667-0.800 tentative conclusions only; below 0.667 not reliable), and Fleiss'
  kappa with Landis and Koch's (1977) words.

A finding whose table is missing (a report built with fewer `parts`) or empty is left out; an
undefined statistic is said as undefined with its reason, never as a number.
"""

from __future__ import annotations

POOLED = "All models (pooled)"  # report.ALL_MODELS; the pooled slice is not a model's finding
TOP_TEMPLATES = 3


def _pct(value: float) -> str:
    return f"{value:.1%}"


def _rate_text(cell: dict) -> str:
    if not cell or cell.get("value") is None:
        return f"undefined ({(cell or {}).get('reason') or 'no outputs'})"
    text = _pct(cell["value"])
    if cell.get("ci_low") is not None and cell.get("ci_high") is not None:
        text += f" [{_pct(cell['ci_low'])}, {_pct(cell['ci_high'])}]"
    return text


def _p_text(p: float | None) -> str:
    if p is None:
        return "undefined"
    return "< 0.0001" if p < 1e-4 else f"{p:.4f}"


def _ratio_text(rate: dict, control: dict) -> str:
    a, b = rate.get("value"), control.get("value")
    if a is None or b is None:
        return "ratio undefined"
    if b == 0:
        return "ratio undefined: the control rate is 0"
    return f"{a / b:.2f} times the control rate"


def _disparity_findings(tables: dict) -> list[dict]:
    rates, pairwise = tables.get("rates"), tables.get("pairwise")
    if not rates or not pairwise or not rates["rows"]:
        return []
    by_model: dict[str, dict[str, dict]] = {}
    for row in rates["rows"]:
        if row["model"] != POOLED:
            by_model.setdefault(row["model"], {})[row["group"]] = row
    findings = []
    for model, groups in by_model.items():
        controls = {name for name, row in groups.items() if row["is_control"]}
        if not controls:
            findings.append(
                {
                    "key": "disparity",
                    "table": "rates",
                    "model": model,
                    "text": f"{model}: no control group is set for these groups, so no group is compared "
                    "with one (set a control group on the axis).",
                }
            )
            continue
        against = []
        for pair in pairwise["rows"]:
            if pair["model"] != model:
                continue
            a, b = pair["group_a"], pair["group_b"]
            if (a in controls) == (b in controls):
                continue  # both or neither a control
            group, control = (b, a) if a in controls else (a, b)
            against.append((pair, group, control))
        significant = [item for item in against if item[0]["reject"]]
        if not significant:
            tested = [pair["p_holm"] for pair, _, _ in against if pair["p_holm"] is not None]
            smallest = f" (smallest p (Holm) {_p_text(min(tested))})" if tested else ""
            findings.append(
                {
                    "key": "disparity",
                    "table": "pairwise",
                    "model": model,
                    "text": f"{model}: no group's refusal rate differs significantly from the control group "
                    f"({', '.join(sorted(controls))}) at 5% after Holm correction{smallest}.",
                }
            )
            continue
        significant.sort(key=lambda item: -(groups[item[1]]["refusal_rate"].get("value") or 0.0))
        parts = []
        for pair, group, control in significant:
            rate, base = groups[group]["refusal_rate"], groups[control]["refusal_rate"]
            parts.append(
                f"{group} {_rate_text(rate)} against {control} {_rate_text(base)}, "
                f"{_ratio_text(rate, base)} (p (Holm) {_p_text(pair['p_holm'])})"
            )
        noun = "group is" if len(parts) == 1 else "groups are"
        findings.append(
            {
                "key": "disparity",
                "table": "pairwise",
                "model": model,
                "text": f"{model}: {len(parts)} {noun} refused at a rate significantly different from the "
                f"control group's (5%, Holm): " + "; ".join(parts) + ".",
            }
        )
    return findings


def _harmful_finding(report: dict, tables: dict) -> list[dict]:
    rates = tables.get("rates")
    harmful = [c for c in report.get("categories", []) if c.get("is_refusal") and c.get("is_harmful")]
    if not rates or not harmful:
        return []
    best = None
    for row in rates["rows"]:
        if row["model"] == POOLED:
            continue
        for category in harmful:
            cell = row.get(f"rate_{category['key']}") or {}
            value = cell.get("value")
            if value is not None and (best is None or value > best[0]):
                best = (value, row, category, cell)
    if best is None:
        return []
    value, row, category, cell = best
    if value == 0:
        outputs = sum(r["n"] for r in rates["rows"] if r["model"] != POOLED)
        names = " or ".join(c["name"].lower() for c in harmful)
        return [
            {
                "key": "harmful",
                "table": "rates",
                "model": "",
                "text": f"No {names} in any model's group ({outputs:,} outputs).",
            }
        ]
    return [
        {
            "key": "harmful",
            "table": "rates",
            "model": row["model"],
            "text": f"Largest {category['name'].lower()} rate: {_rate_text(cell)} for {row['group']} with "
            f"{row['model']} ({row['n']:,} outputs).",
        }
    ]


def _template_findings(tables: dict) -> list[dict]:
    gaps = tables.get("template_gaps")
    if not gaps:
        return []
    by_model: dict[str, list[dict]] = {}
    for row in gaps["rows"]:
        if row["gap"].get("value"):  # a gap of 0 (or undefined) is not a finding
            by_model.setdefault(row["model"], []).append(row)
    findings = []
    for model, model_rows in by_model.items():
        rows = sorted(model_rows, key=lambda r: r["rank"])[:TOP_TEMPLATES]
        parts = [
            f"\u201c{r['template']}\u201d {r['gap']['value'] * 100:.1f} points ({r['max_group']} "
            f"{_pct(r['max_rate'])} against {r['min_group']} {_pct(r['min_rate'])})"
            for r in rows
        ]
        findings.append(
            {
                "key": "templates",
                "table": "template_gaps",
                "model": model,
                "text": f"{model}: the templates with the largest refusal gap between groups: "
                + "; ".join(parts)
                + ".",
            }
        )
    return findings


def alpha_reading(alpha: float) -> str:
    """Krippendorff's (2004, Content Analysis, 2nd ed., p. 241) thresholds for alpha."""
    if alpha >= 0.8:
        return "reliable (Krippendorff: alpha >= 0.800)"
    if alpha >= 0.667:
        return "tentative conclusions only (Krippendorff: 0.667 <= alpha < 0.800)"
    return "not reliable (Krippendorff: alpha < 0.667)"


def kappa_reading(kappa: float) -> str:
    """Landis and Koch's (1977, Biometrics 33:159) words for kappa."""
    if kappa < 0:
        return "poor"
    for bound, word in ((0.2, "slight"), (0.4, "fair"), (0.6, "moderate"), (0.8, "substantial")):
        if kappa <= bound:
            return word
    return "almost perfect"


def _interval(cell: dict) -> str:
    if cell.get("ci_low") is None or cell.get("ci_high") is None:
        return " (no interval: bootstrap resamples 0)"
    return f" [{cell['ci_low']:.3f}, {cell['ci_high']:.3f}]"


def _agreement_finding(tables: dict) -> list[dict]:
    agreement = tables.get("agreement")
    if not agreement:
        return []
    row = next((r for r in agreement["rows"] if r["scope"] == "campaign"), None)
    if row is None:
        return []
    alpha, fleiss = row["alpha"], row["fleiss"]
    if alpha.get("value") is None:
        text = f"Agreement: Krippendorff's alpha is undefined ({alpha.get('reason')})."
    else:
        text = (
            f"Agreement over {row['items']:,} items: Krippendorff's alpha {alpha['value']:.3f}"
            f"{_interval(alpha)}, {alpha_reading(alpha['value'])}"
        )
        if fleiss.get("value") is not None:
            text += (
                f"; Fleiss' kappa {fleiss['value']:.3f}{_interval(fleiss)}, "
                f"{kappa_reading(fleiss['value'])} (Landis and Koch)"
            )
        text += "."
    return [{"key": "agreement", "table": "agreement", "model": "", "text": text}]


def headline_findings(report: dict) -> list[dict]:
    """The report's headline findings, each {"key", "table", "model", "text"} (module docstring)."""
    tables = report.get("tables", {})
    return [
        *_disparity_findings(tables),
        *_harmful_finding(report, tables),
        *_template_findings(tables),
        *_agreement_finding(tables),
    ]
