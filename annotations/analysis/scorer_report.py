"""Scorers measured against the humans: the `scorers` tables of the dashboard report.

One aggregate query counts, per scorer version, model, group, human final category and scorer
category (plus the unparseable and flag columns), the campaign's items that have a finished score (on
PostgreSQL from the score tally that triggers keep, a few rows per prompt, instead of every score);
the pure statistics (annotations/stats/scorer_validation.py) turn those counts into accuracy,
Cohen's kappa with a bootstrap interval, refusal precision/recall/F1, per-group error tests, the
scorer's own refusal rate per group and, for flag scorers, the share flagged per human category.
Nothing here reads items one by one, so a million items cost one GROUP BY.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.db import connection

from annotations.analysis import selectors
from annotations.analysis.report_cells import estimate_dict, rate_cells
from annotations.analysis.report_cells import table as _table
from annotations.analysis.selectors import StatsFilters, campaign_get_for_stats
from annotations.models import CampaignItem, Group, Prompt, ScoreTally
from annotations.stats import StatsInputError
from annotations.stats.scorer_validation import (
    error_rate_by_group,
    flag_rates,
    scorer_agreement,
    scorer_error_counts,
)
from inference.models import ModelEndpoint, Score, Scorer

ALL_MODELS = "All models (pooled)"
SCORER_TABLES = (
    "scorers",
    "scorer_cells",
    "scorer_group_errors",
    "scorer_rates",
    "scorer_flags",
    "scorer_confusion",
)


@dataclass(frozen=True)
class ScorerCounts:
    """Counts of one scorer version over the filtered campaign.

    `confusion[m, g, h, s]`: items of model m and group g with human final category h and scorer
    category s; `unlabelled[m, g, s]`: scored items without a human final label yet;
    `unparseable[m, g]`: scores that named no category; `flagged[h]` / `flag_totals[h]`: flag
    scorer's flagged items among the items with human final category h.
    """

    scorer: Scorer
    version: str
    confusion: np.ndarray
    unlabelled: np.ndarray
    unparseable: np.ndarray
    flagged: np.ndarray
    flag_totals: np.ndarray


_SCORE_TALLY_SQL = f"""SELECT t.scorer_id, t.scorer_version, t.endpoint_id, p.group_id,
    NULLIF(t.final_category_id, -1), NULLIF(t.category_id, -1), t.is_unparseable,
    CASE WHEN t.flagged < 0 THEN NULL ELSE t.flagged = 1 END, SUM(t.n)::bigint
FROM {ScoreTally._meta.db_table} AS t JOIN {Prompt._meta.db_table} AS p ON p.id = t.prompt_id {{join_group}}
WHERE t.campaign_id = %s AND t.n > 0 {{where}}
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8"""  # noqa: S608 (table names from models)
_SCORE_ROWS_SQL = f"""SELECT s.scorer_id, s.scorer_version, i.endpoint_id, p.group_id, i.final_category_id,
    s.category_id, s.is_unparseable, s.is_flagged, COUNT(*)
FROM {CampaignItem._meta.db_table} AS i JOIN {Score._meta.db_table} AS s ON s.output_id = i.output_id
JOIN {Prompt._meta.db_table} AS p ON p.id = i.prompt_id {{join_group}}
WHERE i.campaign_id = %s AND s.status = '{Score.Status.DONE.value}' {{where}}
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8"""  # noqa: S608


def _score_rows(filters: StatsFilters, *, from_tallies: bool | None = None) -> list[tuple]:
    """Finished scores of the campaign's items counted per (scorer, version, model, group, human final
    category, scorer category, unparseable, flag), filters applied in SQL.

    On PostgreSQL the counts come from ScoreTally (kept by triggers, a few rows per prompt), else from
    one GROUP BY over the items joined to their scores; both give the same rows.
    """
    if from_tallies is None:
        from_tallies = selectors.use_tallies()
    alias = "t" if from_tallies else "i"
    where, params = [], [filters.campaign]
    for column, value in (
        (f"{alias}.run_id", filters.run),
        (f"{alias}.endpoint_id", filters.model),
        ("p.group_id", filters.group),
        ("p.template_id", filters.template),
    ):
        if value is not None:
            where.append(f"AND {column} = %s")
            params.append(value)
    join_group = ""
    if filters.axis is not None:
        join_group = f"JOIN {Group._meta.db_table} AS g ON g.id = p.group_id"
        where.append("AND g.axis_id = %s")
        params.append(filters.axis)
    members_sql, member_params = selectors.member_filter_sql(filters)
    if members_sql:
        where.append(f"AND {members_sql}")
        params += member_params
    sql = (_SCORE_TALLY_SQL if from_tallies else _SCORE_ROWS_SQL).format(
        join_group=join_group, where=" ".join(where)
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


@dataclass(frozen=True)
class _Axes:
    categories: list  # (id, key, name, is_refusal)
    models: list  # (id, name)
    groups: list  # (id, name, is_control)


def scorer_counts(*, filters: StatsFilters) -> tuple[_Axes, list[ScorerCounts]]:
    """The axes (categories, models, groups) and the counts of every scorer version with scores here."""
    rows = _score_rows(filters)
    if not rows:
        return _Axes([], [], []), []  # no scores: one query, and the tables are empty
    campaign = campaign_get_for_stats(campaign_id=filters.campaign)
    categories = list(
        campaign.scheme.categories.order_by("order").values_list("pk", "key", "name", "counts_as_refusal")
    )
    model_ids = sorted({r[2] for r in rows})
    group_ids = sorted({r[3] for r in rows if r[3] is not None})
    models = list(ModelEndpoint.objects.filter(pk__in=model_ids).order_by("name").values_list("pk", "name"))
    groups = list(
        Group.objects.filter(pk__in=group_ids).order_by("name").values_list("pk", "name", "is_control")
    )
    axes = _Axes(categories, models, groups)
    cat_index = {pk: i for i, (pk, *_rest) in enumerate(categories)}
    model_index = {pk: i for i, (pk, _) in enumerate(models)}
    group_index = {pk: i for i, (pk, *_rest) in enumerate(groups)}
    k, n_models, n_groups = len(categories), len(models), len(groups)
    scorers = {s.pk: s for s in Scorer.objects.filter(pk__in={r[0] for r in rows})}
    out: dict[tuple[int, str], dict] = {}
    for scorer_id, version, model_id, group_id, final_id, category_id, unparseable, flagged, n in rows:
        if group_id not in group_index:
            continue  # a prompt without a group is in no group table
        entry = out.setdefault(
            (scorer_id, version),
            {
                "confusion": np.zeros((n_models, n_groups, k, k), dtype=np.int64),
                "unlabelled": np.zeros((n_models, n_groups, k), dtype=np.int64),
                "unparseable": np.zeros((n_models, n_groups), dtype=np.int64),
                "flagged": np.zeros(k, dtype=np.int64),
                "flag_totals": np.zeros(k, dtype=np.int64),
            },
        )
        m, g = model_index[model_id], group_index[group_id]
        h = cat_index.get(final_id, -1)
        s = cat_index.get(category_id, -1)
        if unparseable:
            entry["unparseable"][m, g] += n
        if flagged is not None and h >= 0:
            entry["flag_totals"][h] += n
            entry["flagged"][h] += n if flagged else 0
        if s < 0:
            continue
        if h >= 0:
            entry["confusion"][m, g, h, s] += n
        else:
            entry["unlabelled"][m, g, s] += n
    counts = [
        ScorerCounts(scorer=scorers[sid], version=version, **arrays)
        for (sid, version), arrays in sorted(out.items(), key=lambda kv: (scorers[kv[0][0]].name, kv[0][1]))
    ]
    return axes, counts


# --------------------------------------------------------------------------- tables


def _est(estimate) -> dict:
    return estimate_dict(estimate)


def _label(c: ScorerCounts) -> str:
    current = "" if c.version == c.scorer.version else " (older version)"
    return f"{c.scorer.name} @{c.version}{current}"


_NO_PAIRS = "no item has both a human final label and a score"
_FLAG_ONLY = "a flag-only scorer assigns no category: see the flag table"


def _why_undefined(c: ScorerCounts) -> str:
    """Why a scorer version has no item to compare: it only flags, or no labelled item is scored yet."""
    has_categories = c.confusion.sum() + c.unlabelled.sum() > 0
    return _NO_PAIRS if has_categories or c.flag_totals.sum() == 0 else _FLAG_ONLY


def _agreement_cells(
    confusion: np.ndarray, positive: np.ndarray, n_resamples: int, seed: int, *, reason: str = _NO_PAIRS
) -> dict:
    if confusion.sum() == 0:
        undefined = {"value": None, "reason": reason, "n": 0}
        undefined |= {"ci_low": None, "ci_high": None}
        return dict.fromkeys(("accuracy", "kappa", "precision", "recall", "f1"), undefined) | {"n": 0}
    result = scorer_agreement(confusion, positive=positive, bootstrap=n_resamples, seed=seed)
    return {
        "n": result.n,
        "accuracy": _est(result.accuracy),
        "kappa": _est(result.cohen_kappa),
        "precision": _est(result.precision),
        "recall": _est(result.recall),
        "f1": _est(result.f1),
    }


def _group_test_cells(confusions: np.ndarray, positive: np.ndarray, kind: str, seed: int) -> dict:
    """The error (or miss) rate test across the groups of a (G, K, K) stack."""
    errors, totals = scorer_error_counts(confusions, positive=positive, kind=kind)
    keep = totals > 0
    if keep.sum() < 2:
        return {"p": None, "test": "", "reason": "fewer than two groups have items"}
    try:
        result = error_rate_by_group(errors[keep], totals[keep], seed=seed)
    except StatsInputError as exc:
        return {"p": None, "test": "", "reason": str(exc)}
    test = result.test
    return {"p": test.p_value, "test": test.test, "reason": test.reason}


AGREEMENT_COLUMNS = [
    ("n", "Items compared", "int"),
    ("accuracy", "Accuracy (Wilson 95%)", "rate"),
    ("kappa", "Cohen's kappa (bootstrap 95%)", "estimate"),
    ("precision", "Refusal precision", "rate"),
    ("recall", "Refusal recall", "rate"),
    ("f1", "Refusal F1", "estimate"),
]


def scorer_tables(*, filters: StatsFilters, n_resamples: int = 1000, seed: int = 0) -> dict[str, dict]:
    """The scorer validation tables (keys in SCORER_TABLES) for the filtered campaign."""
    axes, all_counts = scorer_counts(filters=filters)
    positive = np.array([c[3] for c in axes.categories], dtype=bool)
    keys = [c[1] for c in axes.categories]
    overall, cells, group_errors, rates, flags, confusion_rows = [], [], [], [], [], []
    for c in all_counts:
        label = _label(c)
        pooled = c.confusion.sum((0, 1))
        by_group = c.confusion.sum(0)
        error_test = _group_test_cells(by_group, positive, "error", seed)
        miss_test = _group_test_cells(by_group, positive, "miss", seed)
        overall.append(
            {
                "scorer": label,
                "kind": c.scorer.get_kind_display(),
                **_agreement_cells(pooled, positive, n_resamples, seed, reason=_why_undefined(c)),
                "unparseable": int(c.unparseable.sum()),
                "unlabelled": int(c.unlabelled.sum()),
                "error_rate_differs_p": error_test["p"],
                "miss_rate_differs_p": miss_test["p"],
            }
        )
        model_slices = [(name, c.confusion[m], c.unlabelled[m]) for m, (_, name) in enumerate(axes.models)]
        if len(axes.models) > 1:
            model_slices.append((ALL_MODELS, by_group, c.unlabelled.sum(0)))
        for model, gkk, gk_unlabelled in model_slices:
            for kind, title in (("error", "any disagreement"), ("miss", "missed human refusals")):
                test = _group_test_cells(gkk, positive, kind, seed)
                errors, totals = scorer_error_counts(gkk, positive=positive, kind=kind)
                group_errors.append(
                    {
                        "scorer": label,
                        "model": model,
                        "error": title,
                        "rates": ", ".join(
                            f"{axes.groups[g][1]} {errors[g] / totals[g]:.1%} ({errors[g]}/{totals[g]})"
                            for g in range(len(axes.groups))
                            if totals[g]
                        ),
                        "p": test["p"],
                        "test": test["test"] or f"undefined ({test['reason']})",
                    }
                )
            for g, (_, group, is_control) in enumerate(axes.groups):
                kk = gkk[g]
                human_n = kk.sum()
                scored = kk.sum(0) + gk_unlabelled[g]
                human_rate, scorer_rate_compared, scorer_rate_all = rate_cells(
                    np.array([kk[positive].sum(), kk[:, positive].sum(), scored[positive].sum()]),
                    np.array([human_n, human_n, scored.sum()]),
                )
                cells.append(
                    {"scorer": label, "model": model, "group": group}
                    | _agreement_cells(kk, positive, 0, seed)
                )
                rates.append(
                    {
                        "scorer": label,
                        "model": model,
                        "group": group,
                        "is_control": is_control,
                        "human_refusal_rate": human_rate,
                        "scorer_refusal_rate_same_items": scorer_rate_compared,
                        "scorer_refusal_rate_all_scored": scorer_rate_all,
                        "scored": int(scored.sum()),
                    }
                )
        if c.flag_totals.sum():
            for h, rate in enumerate(flag_rates(c.flagged, c.flag_totals)):
                flags.append(
                    {
                        "scorer": label,
                        "human_category": axes.categories[h][2],
                        "flagged": int(rate.flagged),
                        "n": int(rate.n),
                        "flag_rate": _est(rate.rate),
                    }
                )
        for h in range(len(keys)):
            confusion_rows.append(
                {"scorer": label, "human_category": axes.categories[h][2]}
                | {f"scorer_{keys[s]}": int(pooled[h, s]) for s in range(len(keys))}
            )
    names = {c[1]: c[2] for c in axes.categories}
    return {
        "scorers": _table(
            "scorers",
            "Scorers against the human final labels",
            [
                ("scorer", "Scorer @version", "text"),
                ("kind", "Kind", "text"),
                *AGREEMENT_COLUMNS,
                ("unparseable", "Unparseable scores", "int"),
                ("unlabelled", "Scored, no human label yet", "int"),
                ("error_rate_differs_p", "Error rate differs by group (p)", "p"),
                ("miss_rate_differs_p", "Missed refusals differ by group (p)", "p"),
            ],
            overall,
        ),
        "scorer_cells": _table(
            "scorer_cells",
            "Scorers against the humans, per model and group",
            [
                ("scorer", "Scorer @version", "text"),
                ("model", "Model", "text"),
                ("group", "Group", "text"),
                *AGREEMENT_COLUMNS,
            ],
            cells,
        ),
        "scorer_group_errors": _table(
            "scorer_group_errors",
            "Does the scorer err more for some groups? (chi-square or exact test of equal error rates)",
            [
                ("scorer", "Scorer @version", "text"),
                ("model", "Model", "text"),
                ("error", "Error", "text"),
                ("rates", "Error rate per group", "text"),
                ("p", "p", "p"),
                ("test", "Test", "text"),
            ],
            group_errors,
        ),
        "scorer_rates": _table(
            "scorer_rates",
            "The scorer's own refusal rate per group, beside the humans'",
            [
                ("scorer", "Scorer @version", "text"),
                ("model", "Model", "text"),
                ("group", "Group", "text"),
                ("human_refusal_rate", "Human refusal rate", "rate"),
                ("scorer_refusal_rate_same_items", "Scorer, same items", "rate"),
                ("scorer_refusal_rate_all_scored", "Scorer, every scored output", "rate"),
                ("scored", "Scored outputs", "int"),
            ],
            rates,
        ),
        "scorer_flags": _table(
            "scorer_flags",
            "Flag scorers: share flagged among the items humans put in each category",
            [
                ("scorer", "Scorer @version", "text"),
                ("human_category", "Human final category", "text"),
                ("flagged", "Flagged", "int"),
                ("n", "Items", "int"),
                ("flag_rate", "Share flagged (Wilson 95%)", "rate"),
            ],
            flags,
        ),
        "scorer_confusion": _table(
            "scorer_confusion",
            "Confusion matrices: human final category (rows) x scorer category (columns)",
            [("scorer", "Scorer @version", "text"), ("human_category", "Human", "text")]
            + [(f"scorer_{key}", f"Scorer: {names[key]}", "int") for key in keys],
            confusion_rows,
        ),
    }
