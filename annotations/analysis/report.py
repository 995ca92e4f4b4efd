"""The dashboard report: every number the dashboards, the CSV downloads, the API and `audit_report` show.

`dashboard_report` loads the filtered campaign's arrays (selectors/stats.py), runs the pure
statistics (annotations/stats) on them and returns one JSON-able dict of named tables. Each table
is `{"key", "title", "columns": [{"key", "label", "kind"}], "rows": [...]}`; a cell of kind
"estimate" or "rate" is `{"value", "reason", "n", "ci_low", "ci_high"}` where `value` is None
exactly when the statistic is undefined, and `reason` then says why (never 0 or 1 in its place).
"""

from __future__ import annotations

import math
from dataclasses import asdict
from itertools import combinations

import numpy as np

from annotations.analysis.agreement_scopes import (
    LabelRows,
    consensus_by_scope,
    pairwise_kappa_by_scope,
    scope_agreement,
)
from annotations.analysis.findings import headline_findings
from annotations.analysis.machine_assisted import MACHINE_ASSISTED_TABLES, machine_assisted_tables
from annotations.analysis.member_attributes import MEMBER_ATTRIBUTE_TABLES, member_attribute_tables
from annotations.analysis.model_comparison import MODEL_COMPARISON_TABLES, model_comparison_tables
from annotations.analysis.report_cells import estimate_dict
from annotations.analysis.report_cells import number as _number
from annotations.analysis.report_cells import rate_cells as _rate_cells
from annotations.analysis.report_cells import table as _table
from annotations.analysis.scorer_report import SCORER_TABLES, scorer_tables
from annotations.analysis.selectors import (
    LABEL_SOURCES,
    CampaignArrays,
    StatsFilters,
    campaign_annotator_names,
    campaign_arrays,
    model_group_category_counts,
    model_member_category_counts,
    model_template_group_category_counts,
    outcome_units,
    scope_masks,
    weighted_bincount,
)
from annotations.labelling.final_label import VOTE_RULES
from annotations.stats import (
    Estimate,
    change_rates,
    cmh_group_vs_rest,
    group_rates,
    holm_adjust,
    independence_test,
    logistic_group_test,
    max_min_rate_ratio,
    pairwise_comparisons,
    template_gap_ranking,
)

ALL_MODELS = "All models (pooled)"
DISPARITY_TABLES = (
    "rates",
    "tests",
    "pairwise",
    "stratified",
    "templates",
    "template_gaps",
    "members",
    "consistency",
    "consistency_groups",
    "consistency_pairs",
    *MEMBER_ATTRIBUTE_TABLES,
    *MODEL_COMPARISON_TABLES,
)
AGREEMENT_TABLES = ("agreement", "category_agreement", "pairwise_kappa", "annotator_consensus", "annotators")
TABLE_KEYS = DISPARITY_TABLES + AGREEMENT_TABLES + SCORER_TABLES + MACHINE_ASSISTED_TABLES


# --------------------------------------------------------------------------- disparity


def _model_slices(data: CampaignArrays, mgk: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """(model name, groups x categories counts) per model, then all models pooled if more than one."""
    slices = [(name, mgk[i]) for i, name in enumerate(data.models)]
    if len(data.models) > 1:
        slices.append((ALL_MODELS, mgk.sum(0)))
    return slices


def _rates_table(data: CampaignArrays, mgk: np.ndarray) -> dict:
    refusal = data.refusal_codes
    categories = data.categories
    rows = []
    for model, gk in _model_slices(data, mgk):
        n = gk.sum(1)
        refused = group_rates(gk[:, refusal].sum(1), n)
        per_category = [group_rates(gk[:, k], n) for k in range(len(categories))]
        for g, group in enumerate(data.groups):
            row = {
                "model": model,
                "group": group,
                "is_control": data.group_is_control[g],
                "n": int(n[g]),
                "refusals": int(refused[g].successes),
                "refusal_rate": estimate_dict(refused[g].rate),
                "refusal_vs_overall": estimate_dict(refused[g].difference_from_overall),
            }
            for k, category in enumerate(categories):
                row[f"rate_{category.key}"] = estimate_dict(per_category[k][g].rate)
            rows.append(row)
    columns = [
        ("model", "Model", "text"),
        ("group", "Group", "text"),
        ("n", "Outputs", "int"),
        ("refusals", "Refusals", "int"),
        ("refusal_rate", "Refusal rate (Wilson 95%)", "rate"),
        ("refusal_vs_overall", "Difference from the model's overall rate", "rate"),
        *[(f"rate_{c.key}", c.name, "rate") for c in categories],
    ]
    return _table("rates", "Rate of refusal and of each category, per group and model", columns, rows)


def _tests_tables(data: CampaignArrays, mgk: np.ndarray, seed: int) -> tuple[dict, dict]:
    refusal = data.refusal_codes
    tests, pairs = [], []
    for model, gk in _model_slices(data, mgk):
        n = gk.sum(1)
        x = gk[:, refusal].sum(1)
        ratio = max_min_rate_ratio(x, n)
        for outcome, table in (("refusal", np.column_stack([x, n - x])), ("all categories", gk)):
            test = independence_test(table, rng=seed)
            row = {
                "model": model,
                "outcome": outcome,
                "test": test.test,
                "statistic": _number(test.statistic),
                "dof": test.dof,
                "p_value": _number(test.p_value),
                "min_expected": _number(test.min_expected),
                "n": test.n,
                "reason": test.reason or "",
                "max_min_ratio": None,
                "max_group": "",
                "min_group": "",
            }
            if outcome == "refusal":
                row["max_min_ratio"] = estimate_dict(ratio.ratio)
                row["max_group"] = "" if ratio.max_group is None else data.groups[ratio.max_group]
                row["min_group"] = "" if ratio.min_group is None else data.groups[ratio.min_group]
            tests.append(row)
        for comparison in pairwise_comparisons(x, n):
            pairs.append(
                {
                    "model": model,
                    "group_a": data.groups[comparison.group_a],
                    "group_b": data.groups[comparison.group_b],
                    "difference": estimate_dict(comparison.difference),
                    "test": comparison.test,
                    "p_value": comparison.p_value,
                    "p_holm": comparison.p_holm,
                    "reject": comparison.reject,
                    "reason": comparison.reason or "",
                }
            )
    tests_table = _table(
        "tests",
        "Independence of outcome and group, per model (chi-square; exact test when expected counts < 5)",
        [
            ("model", "Model", "text"),
            ("outcome", "Outcome", "text"),
            ("test", "Test", "text"),
            ("statistic", "Statistic", "float"),
            ("dof", "df", "int"),
            ("p_value", "p", "p"),
            ("min_expected", "Smallest expected count", "float"),
            ("n", "N", "int"),
            ("reason", "Why no test", "text"),
            ("max_min_ratio", "Highest / lowest refusal rate", "estimate"),
            ("max_group", "Highest", "text"),
            ("min_group", "Lowest", "text"),
        ],
        tests,
    )
    pairs_table = _table(
        "pairwise",
        "Refusal rate, pairs of groups per model (difference a - b, Newcombe 95%; Holm-adjusted p)",
        [
            ("model", "Model", "text"),
            ("group_a", "Group a", "text"),
            ("group_b", "Group b", "text"),
            ("difference", "Difference a - b", "rate"),
            ("test", "Test", "text"),
            ("p_value", "p", "p"),
            ("p_holm", "p (Holm)", "p"),
            ("reject", "Significant at 5% (Holm)", "bool"),
            ("reason", "Why no test", "text"),
        ],
        pairs,
    )
    return tests_table, pairs_table


def _stratified_table(data: CampaignArrays, mgk: np.ndarray) -> dict:
    refusal = data.refusal_codes
    x = mgk[:, :, refusal].sum(2)
    n = mgk.sum(2)
    rows = []
    results = [cmh_group_vs_rest(x, n, g) for g in range(len(data.groups))] if len(data.groups) > 1 else []
    adjusted = holm_adjust([np.nan if r.p_value is None else r.p_value for r in results])
    for g, result in enumerate(results):
        rows.append(
            {
                "comparison": f"{data.groups[g]} vs all other groups",
                "method": "Cochran-Mantel-Haenszel, strata = models",
                "odds_ratio": estimate_dict(result.odds_ratio),
                "statistic": _number(result.statistic),
                "dof": 1 if result.statistic is not None else None,
                "p_value": result.p_value,
                "p_holm": _number(adjusted[g]),
                "breslow_day_p": result.breslow_day_p,
                "strata": f"{result.n_strata_used} used, {result.n_strata_dropped} dropped",
                "note": result.reason or "",
            }
        )
    logistic = logistic_group_test(x, n)
    rows.append(
        {
            "comparison": "any difference between groups",
            "method": "logistic regression refusal ~ group + model, likelihood-ratio test",
            "odds_ratio": estimate_dict(Estimate.undefined("one odds ratio per group: see the CMH rows")),
            "statistic": _number(logistic.statistic),
            "dof": logistic.dof,
            "p_value": logistic.p_value,
            "p_holm": None,
            "breslow_day_p": None,
            "strata": f"{len(data.models)} models",
            "note": logistic.reason or logistic.note or "",
        }
    )
    return _table(
        "stratified",
        "Refusal by group, stratified by model (pooling models cannot mislead)",
        [
            ("comparison", "Comparison", "text"),
            ("method", "Method", "text"),
            ("odds_ratio", "Pooled odds ratio (95%)", "estimate"),
            ("statistic", "Statistic", "float"),
            ("dof", "df", "int"),
            ("p_value", "p", "p"),
            ("p_holm", "p (Holm)", "p"),
            ("breslow_day_p", "Breslow-Day p (same OR in every model)", "p"),
            ("strata", "Strata", "text"),
            ("note", "Note", "text"),
        ],
        rows,
    )


def _drilldown_tables(data: CampaignArrays, mtgk: np.ndarray, mmk: np.ndarray) -> tuple[dict, dict, dict]:
    refusal = data.refusal_codes
    template_rows, gap_rows, member_rows = [], [], []
    for m, model in enumerate(data.models):
        x_tg = mtgk[m][:, :, refusal].sum(2)
        n_tg = mtgk[m].sum(2)
        cells = _rate_cells(x_tg.ravel(), n_tg.ravel())
        n_groups = len(data.groups)
        for t, template in enumerate(data.templates):
            for g, group in enumerate(data.groups):
                if n_tg[t, g]:
                    template_rows.append(
                        {
                            "model": model,
                            "template": template,
                            "group": group,
                            "n": int(n_tg[t, g]),
                            "refusal_rate": cells[t * n_groups + g],
                        }
                    )
        for rank, gap in enumerate(template_gap_ranking(x_tg, n_tg), start=1):
            gap_rows.append(
                {
                    "model": model,
                    "rank": rank,
                    "template": data.templates[gap.template],
                    "gap": estimate_dict(gap.gap),
                    "max_group": "" if gap.max_group is None else data.groups[gap.max_group],
                    "max_rate": gap.max_rate,
                    "min_group": "" if gap.min_group is None else data.groups[gap.min_group],
                    "min_rate": gap.min_rate,
                }
            )
        x_member = mmk[m][:, refusal].sum(1)
        n_member = mmk[m].sum(1)
        member_cells = _rate_cells(x_member, n_member)
        for i, member in enumerate(data.members):
            if n_member[i]:
                member_rows.append(
                    {
                        "model": model,
                        "group": data.groups[member.group] if member.group >= 0 else "",
                        "member": member.name,
                        "n": int(n_member[i]),
                        "refusal_rate": member_cells[i],
                    }
                )
    templates = _table(
        "templates",
        "Refusal rate per template and group (drill-down)",
        [
            ("model", "Model", "text"),
            ("template", "Template", "text"),
            ("group", "Group", "text"),
            ("n", "Outputs", "int"),
            ("refusal_rate", "Refusal rate (Wilson 95%)", "rate"),
        ],
        template_rows,
    )
    gaps = _table(
        "template_gaps",
        "Templates with the largest refusal gap between groups",
        [
            ("model", "Model", "text"),
            ("rank", "Rank", "int"),
            ("template", "Template", "text"),
            ("gap", "Gap (highest - lowest group)", "rate"),
            ("max_group", "Highest group", "text"),
            ("max_rate", "Its rate", "percent"),
            ("min_group", "Lowest group", "text"),
            ("min_rate", "Its rate", "percent"),
        ],
        gap_rows,
    )
    members = _table(
        "members",
        "Refusal rate per member (name)",
        [
            ("model", "Model", "text"),
            ("group", "Group", "text"),
            ("member", "Member", "text"),
            ("n", "Outputs", "int"),
            ("refusal_rate", "Refusal rate (Wilson 95%)", "rate"),
        ],
        member_rows,
    )
    return templates, gaps, members


def _consistency_tables(data: CampaignArrays, mtgk: np.ndarray) -> tuple[dict, dict, dict]:
    summary, groups_rows, pair_rows = [], [], []
    pairs = list(combinations(range(len(data.groups)), 2))
    for m, model in enumerate(data.models):
        rates = change_rates(mtgk[m])
        n_tg = mtgk[m].sum(2)
        for a, b in pairs:
            groups_rows.append(
                {
                    "model": model,
                    "group_a": data.groups[a],
                    "group_b": data.groups[b],
                    "mean_change": _number(rates.mean_between[a, b]),
                    "n_templates": int(rates.n_templates[a, b]),
                }
            )
        for t, template in enumerate(data.templates):
            defined = [(a, b) for a, b in pairs if not math.isnan(rates.between[t, a, b])]
            for a, b in defined:
                pair_rows.append(
                    {
                        "model": model,
                        "template": template,
                        "group_a": data.groups[a],
                        "group_b": data.groups[b],
                        "n_a": int(n_tg[t, a]),
                        "n_b": int(n_tg[t, b]),
                        "change": _number(rates.between[t, a, b]),
                        "excess": _number(rates.excess[t, a, b]),
                    }
                )
            if not defined:
                continue
            values = [rates.between[t, a, b] for a, b in defined]
            top = int(np.argmax(values))
            excess = [rates.excess[t, a, b] for a, b in defined if not math.isnan(rates.excess[t, a, b])]
            summary.append(
                {
                    "model": model,
                    "template": template,
                    "pairs": len(defined),
                    "mean_change": _number(np.mean(values)),
                    "max_change": _number(values[top]),
                    "max_pair": f"{data.groups[defined[top][0]]} / {data.groups[defined[top][1]]}",
                    "mean_excess": _number(np.mean(excess)) if excess else None,
                }
            )
    summary.sort(key=lambda r: (r["model"], -(r["mean_change"] or 0.0)))
    return (
        _table(
            "consistency",
            "Counterfactual consistency: how often the category changes when only the name changes",
            [
                ("model", "Model", "text"),
                ("template", "Template", "text"),
                ("pairs", "Group pairs", "int"),
                ("mean_change", "Mean change rate over group pairs", "percent"),
                ("max_change", "Largest change rate", "percent"),
                ("max_pair", "Between", "text"),
                ("mean_excess", "Beyond within-group change", "percent"),
            ],
            summary,
        ),
        _table(
            "consistency_groups",
            "Change rate per pair of groups, mean over templates",
            [
                ("model", "Model", "text"),
                ("group_a", "Group a", "text"),
                ("group_b", "Group b", "text"),
                ("mean_change", "Mean change rate", "percent"),
                ("n_templates", "Templates", "int"),
            ],
            groups_rows,
        ),
        _table(
            "consistency_pairs",
            "Change rate per template and pair of groups",
            [
                ("model", "Model", "text"),
                ("template", "Template", "text"),
                ("group_a", "Group a", "text"),
                ("group_b", "Group b", "text"),
                ("n_a", "Outputs a", "int"),
                ("n_b", "Outputs b", "int"),
                ("change", "Change rate", "percent"),
                ("excess", "Beyond within-group change", "percent"),
            ],
            pair_rows,
        ),
    )


# --------------------------------------------------------------------------- agreement


def _agreement_tables(data: CampaignArrays, n_resamples: int, seed: int) -> tuple[dict, dict, dict, dict]:
    overview, per_category, pairwise, consensus = [], [], [], []
    rated = data.counts.sum(1) > 0  # unlabelled items are not reliability data
    rows = LabelRows(
        data.label_set,
        data.label_annotator,
        data.label_code,
        data.set_counts,
        len(data.annotators),
        weight=data.set_weight,
    )
    partitions = [  # the label sets' scopes, in the order of scope_masks
        (0, np.zeros(data.set_counts.shape[0], dtype=np.int64)),
        (1, data.set_model),
        (1 + len(data.models), data.set_group),
    ]
    scopes = scope_masks(data)
    pairs_by_scope = pairwise_kappa_by_scope(rows, partitions, len(scopes))
    consensus_by = consensus_by_scope(rows, partitions, len(scopes))
    for s, (kind, name, mask) in enumerate(scopes):
        counts, weights = data.counts[mask & rated], data.item_weight[mask & rated]
        scope = {"scope": kind, "name": name}
        result = scope_agreement(counts, n_resamples=n_resamples, rng=seed, weights=weights)
        overview.append(
            {
                **scope,
                "items": int(weights.sum()),
                "ratings": int(weights @ counts.sum(1)),
                "alpha": estimate_dict(result.alpha),
                "fleiss": estimate_dict(result.fleiss),
                "percent": estimate_dict(result.percent),
            }
        )
        for item in result.categories:
            per_category.append(
                {
                    **scope,
                    "category": data.categories[item.category].name,
                    "n_ratings": item.n_ratings,
                    "specific": estimate_dict(item.specific_agreement),
                    "kappa": estimate_dict(item.kappa),
                    "alpha": estimate_dict(item.alpha),
                }
            )
        for pair in pairs_by_scope[s]:
            if pair.n_shared:
                pairwise.append(
                    {
                        **scope,
                        "annotator_a": data.annotators[pair.rater_a],
                        "annotator_b": data.annotators[pair.rater_b],
                        "shared": pair.n_shared,
                        "agreement": estimate_dict(pair.agreement),
                        "kappa": estimate_dict(pair.kappa),
                    }
                )
        for result in consensus_by[s]:
            if result.n_compared + result.n_no_consensus:
                consensus.append(
                    {
                        **scope,
                        "annotator": data.annotators[result.rater],
                        "compared": result.n_compared,
                        "no_consensus": result.n_no_consensus,
                        "agreement": estimate_dict(result.agreement),
                        "kappa": estimate_dict(result.kappa),
                    }
                )
    scope_columns = [("scope", "Scope", "text"), ("name", "Name", "text")]
    ci = f"bootstrap 95%, {n_resamples} resamples" if n_resamples else "no bootstrap"
    return (
        _table(
            "agreement",
            f"Agreement per campaign, model and group ({ci})",
            [
                *scope_columns,
                ("items", "Items rated", "int"),
                ("ratings", "Ratings", "int"),
                ("alpha", "Krippendorff's alpha", "estimate"),
                ("fleiss", "Fleiss' kappa", "estimate"),
                ("percent", "Percent agreement", "rate"),
            ],
            overview,
        ),
        _table(
            "category_agreement",
            "Agreement per category",
            [
                *scope_columns,
                ("category", "Category", "text"),
                ("n_ratings", "Ratings", "int"),
                ("specific", "Specific agreement", "rate"),
                ("kappa", "Fleiss' category kappa", "estimate"),
                ("alpha", "Alpha (category vs rest)", "estimate"),
            ],
            per_category,
        ),
        _table(
            "pairwise_kappa",
            "Cohen's kappa for every pair of annotators on their shared items",
            [
                *scope_columns,
                ("annotator_a", "Annotator a", "text"),
                ("annotator_b", "Annotator b", "text"),
                ("shared", "Shared items", "int"),
                ("agreement", "Raw agreement", "rate"),
                ("kappa", "Cohen's kappa", "estimate"),
            ],
            pairwise,
        ),
        _table(
            "annotator_consensus",
            "Each annotator against the consensus (plurality) of the others",
            [
                *scope_columns,
                ("annotator", "Annotator", "text"),
                ("compared", "Items compared", "int"),
                ("no_consensus", "Items without a consensus", "int"),
                ("agreement", "Agreement with consensus", "rate"),
                ("kappa", "Cohen's kappa vs consensus", "estimate"),
            ],
            consensus,
        ),
    )


def _annotators_table(data: CampaignArrays) -> dict:
    n_items = data.n_items
    n_annotators = len(data.annotators)
    weight = data.label_weight
    labels = weighted_bincount(data.label_annotator, weight, n_annotators)
    gold_of_label = data.set_gold[data.label_set]
    on_gold = gold_of_label >= 0
    gold_labelled = weighted_bincount(data.label_annotator[on_gold], weight[on_gold], n_annotators)
    correct = on_gold & (data.label_code == gold_of_label)
    gold_correct = weighted_bincount(data.label_annotator[correct], weight[correct], n_annotators)
    accuracy = _rate_cells(gold_correct, gold_labelled, reason="no gold item labelled")
    rows = {
        name: {
            "annotator": name,
            "labels": int(labels[a]),
            "share": int(labels[a]) / n_items if n_items else None,
            "gold_labelled": int(gold_labelled[a]),
            "gold_correct": int(gold_correct[a]),
            "gold_accuracy": accuracy[a],
        }
        for a, name in enumerate(data.annotators)
    }
    idle = Estimate.undefined("no gold item labelled")
    for name in campaign_annotator_names(campaign=data.campaign):
        rows.setdefault(
            name,
            {
                "annotator": name,
                "labels": 0,
                "share": 0.0 if n_items else None,
                "gold_labelled": 0,
                "gold_correct": 0,
                "gold_accuracy": estimate_dict(idle),
            },
        )
    return _table(
        "annotators",
        "Annotator progress and accuracy on gold items",
        [
            ("annotator", "Annotator", "text"),
            ("labels", "Labels", "int"),
            ("share", "Share of items labelled", "percent"),
            ("gold_labelled", "Gold items labelled", "int"),
            ("gold_correct", "Gold correct", "int"),
            ("gold_accuracy", "Gold accuracy (Wilson 95%)", "rate"),
        ],
        [rows[name] for name in sorted(rows)],
    )


# --------------------------------------------------------------------------- the report


REPORT_PARTS = ("disparity", "agreement", "scorers", "machine_assisted")


def dashboard_report(
    *,
    filters: StatsFilters,
    n_resamples: int = 0,
    seed: int = 0,
    parts: tuple[str, ...] = REPORT_PARTS,
    scorer: int | None = None,
) -> dict:
    """Every dashboard number for `filters` as a JSON-able dict (see the module docstring).

    `n_resamples` bootstrap resamples (0 = none) give the intervals of the agreement coefficients;
    `seed` fixes them and the Monte Carlo exact tests, so a report is reproducible. `parts` limits
    the work to the disparity tables, the agreement tables, the scorer validation tables
    (annotations/analysis/scorer_report.py; their kappa intervals take `n_resamples`, 1000 when 0)
    and the machine-assisted estimates (annotations/analysis/machine_assisted.py, with the `scorer`
    id when given; their plan, scorers and assumptions under the report's "machine_assisted" key).
    """
    data = campaign_arrays(filters=filters)
    units = outcome_units(data)
    tables: dict[str, dict] = {}
    if "disparity" in parts:
        mgk = model_group_category_counts(data, units)
        mtgk = model_template_group_category_counts(data, units)
        tables["rates"] = _rates_table(data, mgk)
        tables["tests"], tables["pairwise"] = _tests_tables(data, mgk, seed)
        tables["stratified"] = _stratified_table(data, mgk)
        mmk = model_member_category_counts(data, units)
        tables["templates"], tables["template_gaps"], tables["members"] = _drilldown_tables(data, mtgk, mmk)
        tables.update(member_attribute_tables(data, mmk))
        tables["consistency"], tables["consistency_groups"], tables["consistency_pairs"] = (
            _consistency_tables(data, mtgk)
        )
        tables.update(model_comparison_tables(data, mgk))
    if "agreement" in parts:
        (
            tables["agreement"],
            tables["category_agreement"],
            tables["pairwise_kappa"],
            tables["annotator_consensus"],
        ) = _agreement_tables(data, n_resamples, seed)
        tables["annotators"] = _annotators_table(data)
    if "scorers" in parts:
        tables.update(scorer_tables(filters=filters, n_resamples=n_resamples or 1000, seed=seed))
    extra = {}
    if "machine_assisted" in parts:
        assisted, extra["machine_assisted"] = machine_assisted_tables(
            filters=filters, campaign=data.campaign, scorer_id=scorer
        )
        tables.update(assisted)
    campaign = data.campaign
    w = data.item_weight
    labelled = data.counts.sum(1) >= campaign.labels_per_output
    complete = labelled | (data.final >= 0)
    report = {
        "campaign": {
            "id": campaign.pk,
            "name": campaign.name,
            "final_rule": campaign.final_rule,
            # Labels made with a scorer's suggestion on screen are not independent of that scorer.
            "show_suggestions": campaign.show_suggestions,
        },
        "filters": filters.as_query(),
        "label_source": {"key": units.source, "label": LABEL_SOURCES[units.source]},
        "final_rule": VOTE_RULES[campaign.final_rule],
        "bootstrap_resamples": n_resamples,
        "seed": seed,
        "categories": [
            {"key": c.key, "name": c.name, "is_refusal": c.is_refusal, "is_harmful": c.is_harmful}
            for c in data.categories
        ],
        "models": list(data.models),
        "groups": list(data.groups),
        "annotators": list(data.annotators),
        "choices": asdict(data.choices),
        "summary": {
            "items_in_filter": data.n_items,
            "items_fully_labelled": int(w[labelled].sum()),
            "gold_items": int(w[data.gold >= 0].sum()),
            "adjudicated_items": int(w[data.adjudicated >= 0].sum()),
            "labels": int(data.label_weight.sum()),
            "items_with_final_label": int(w[data.final >= 0].sum()),
            "items_awaiting_adjudication": int(w[complete & (data.final < 0)].sum()),
            "units": int(units.weight.sum()),
        },
        **extra,
        "tables": tables,
    }
    report["findings"] = headline_findings(report)
    return report
