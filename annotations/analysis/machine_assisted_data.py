"""Reads for the machine-assisted estimates: a campaign's population with labels, plan and scores.

The population of a campaign is its frame (CampaignFrameOutput, one row per output the plan drew
from) or, for plan "all", its items (every one drawn, probability 1) except the gold items the plan
did not draw (`Campaign.sampling["gold_outside"]`; under the other plans such an item has no drawn
frame row, so its label is never used either). For every output of the
population, filtered like the dashboards, one query reads its model, its prompt's group, its
inclusion probability pi, whether the plan drew it, the human final category of its item (if any)
and the finished, parseable scores of the chosen scorer versions (LEFT JOINs: an output without an
item or a score still comes back, once). numpy turns those rows into the arrays the estimators
take; nothing here loops over queries.

Which scorer versions: the `scorer` parameter (its current version; the stored draw's version for
the campaign's sampling scorer), else the campaign's `sampling_scorer`, else every version of a
scorer of the campaign's scheme with finished scores on the population (one more query, which is
the only one when nothing is scored).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.db import connection

from annotations.analysis.selectors import StatsFilters, member_filter_sql
from annotations.core.exceptions import AuditError, NotFoundError
from annotations.core.ids import MAX_ID
from annotations.models import Campaign, CampaignFrameOutput, CampaignItem, Group, Prompt
from inference.models import ModelEndpoint, Output, Score, Scorer
from inference.scorers.probabilities import probability_rows

_ITEM = CampaignItem._meta.db_table
_FRAME = CampaignFrameOutput._meta.db_table
_PROMPT = Prompt._meta.db_table
_GROUP = Group._meta.db_table
_OUTPUT = Output._meta.db_table
_SCORE = Score._meta.db_table
_SCORER = Scorer._meta.db_table
_DONE = Score.Status.DONE.value
WEIGHTED_PLANS = (Campaign.SamplingPlan.STRATIFIED, Campaign.SamplingPlan.ACTIVE)


def stats_scorer_parse(*, raw: str | None) -> int | None:
    """The `scorer` parameter: a scorer id, or None when absent; AuditError naming the field otherwise."""
    if raw is None or not raw.strip():
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_ID:
        message = f"scorer must be a scorer id in 1..{MAX_ID}, got {raw[:50]!r}"
        raise AuditError(message, errors=[{"field": "scorer", "message": message}])
    return value


@dataclass(frozen=True)
class ScorerVersion:
    """One scorer version whose predictions feed the estimates, and how it was chosen."""

    scorer: Scorer
    version: str

    @property
    def label(self) -> str:
        """ "name @version", marked when it is not the scorer's current version."""
        current = "" if self.version == self.scorer.version else " (older version)"
        return f"{self.scorer.name} @{self.version}{current}"


@dataclass(frozen=True)
class ScorerPredictions:
    """One scorer version's predictions on the population, in population order.

    `usable[i]`: output i has a finished, parseable score of this version with a category or
    probabilities. `refusal[i]` = sum of its probabilities over the refusal categories when it has
    probabilities, else 1/0 from its category; `category[i, k]` = p_k, else 1{category = k}
    (nan where not usable).
    """

    version: ScorerVersion
    usable: np.ndarray
    refusal: np.ndarray
    category: np.ndarray


@dataclass(frozen=True)
class Population:
    """The filtered population of a campaign as arrays (one entry per output), with its axes.

    `model[i]` / `group[i]` index `models` / `groups` (outputs whose prompt has no group are left
    out); `pi[i]` its inclusion probability; `drawn[i]` whether the plan drew it; `final[i]` the
    position in `categories` of its item's human final category (-1: none, or no item).
    """

    plan: str
    categories: tuple[tuple[int, str, str, bool], ...]  # (id, key, name, counts as refusal)
    models: tuple[str, ...]
    groups: tuple[tuple[str, bool, int], ...]  # (name, is control, axis id)
    model: np.ndarray
    group: np.ndarray
    pi: np.ndarray
    drawn: np.ndarray
    final: np.ndarray
    predictions: tuple[ScorerPredictions, ...]
    scorer_choice: str


def _population_from(plan: str, filters: StatsFilters) -> tuple[str, list[str], list, str]:
    """FROM of the filtered population (alias x), its WHERE terms and parameters, its select columns."""
    joins = [f"JOIN {_PROMPT} p ON p.id = x.prompt_id"]
    if plan == Campaign.SamplingPlan.ALL:
        source, run_column = f"{_ITEM} x", "x.run_id"
        columns = "x.inclusion_probability, 1, x.final_category_id"
    else:
        source, run_column = f"{_FRAME} x", "o.run_id"
        columns = "x.inclusion_probability, CASE WHEN x.is_drawn THEN 1 ELSE 0 END, i.final_category_id"
        joins.append(f"LEFT JOIN {_ITEM} i ON i.campaign_id = x.campaign_id AND i.output_id = x.output_id")
        if filters.run is not None:
            joins.append(f"JOIN {_OUTPUT} o ON o.id = x.output_id")
    where, params = ["x.campaign_id = %s", "p.group_id IS NOT NULL"], [filters.campaign]
    for column, value in (
        (run_column, filters.run),
        ("x.endpoint_id", filters.model),
        ("p.group_id", filters.group),
        ("p.template_id", filters.template),
    ):
        if value is not None:
            where.append(f"{column} = %s")
            params.append(value)
    if filters.axis is not None:
        where.append(f"p.group_id IN (SELECT g.id FROM {_GROUP} g WHERE g.axis_id = %s)")  # noqa: S608
        params.append(filters.axis)
    members_sql, member_params = member_filter_sql(filters)
    if members_sql:
        where.append(members_sql)
        params += member_params
    return f"FROM {source} {' '.join(joins)}", where, params, columns


def _fetch(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _scored_versions(plan: str, filters: StatsFilters, scheme_id: int) -> list[tuple[int, str]]:
    """(scorer, version) of the scheme's scorers with finished, parseable scores on the population."""
    source, where, params, _ = _population_from(plan, filters)
    sql = (
        f"SELECT s.scorer_id, s.scorer_version {source} "
        f"JOIN {_SCORE} s ON s.output_id = x.output_id JOIN {_SCORER} sc ON sc.id = s.scorer_id "
        f"WHERE {' AND '.join(where)} AND s.status = %s AND NOT s.is_unparseable AND sc.scheme_id = %s "
        "GROUP BY 1, 2"
    )
    return [(r[0], r[1]) for r in _fetch(sql, [*params, _DONE, scheme_id])]


def _chosen_versions(
    campaign: Campaign, filters: StatsFilters, scorer_id: int | None
) -> tuple[list[ScorerVersion], str]:
    """The scorer versions to use and a sentence saying how they were chosen (see the module docstring)."""
    sampling_version = (campaign.sampling or {}).get("scorer_version")
    if scorer_id is not None:
        scorer = Scorer.objects.filter(pk=scorer_id).first()
        if scorer is None:
            raise NotFoundError(f"Scorer {scorer_id} does not exist.")
        if scorer.scheme_id != campaign.scheme_id:
            message = f"scorer {scorer.name} does not assign this campaign's categories (another scheme)"
            raise AuditError(message, errors=[{"field": "scorer", "message": message}])
        is_sampling = scorer.pk == campaign.sampling_scorer_id and sampling_version
        version = sampling_version if is_sampling else scorer.version
        return [ScorerVersion(scorer, version)], "the scorer named by the `scorer` parameter"
    if campaign.sampling_scorer_id is not None:
        scorer = campaign.sampling_scorer
        version = sampling_version or scorer.version
        return [ScorerVersion(scorer, version)], "the campaign's sampling scorer"
    found = _scored_versions(campaign.sampling_plan, filters, campaign.scheme_id)
    if not found:
        return [], "every scorer version with finished scores on the population (none yet)"
    scorers = Scorer.objects.in_bulk({sid for sid, _ in found})
    versions = sorted((ScorerVersion(scorers[sid], v) for sid, v in found), key=lambda s: s.label)
    return versions, "every scorer version with finished scores on the population"


def score_predictions(
    *, raws: list, category_ids: list, keys: list[str], category_index: dict[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What many scores predict: (matrix, from_probabilities, predicts), one row per score.

    The one definition the estimates and the planner share: a score's probabilities when they are
    usable (`inference.scorers.probabilities`, the reading the active draw uses: a missing key is 0,
    rescaled to sum 1; a non-number, a key outside the scheme or a sum off 1 makes them unusable),
    else 1 for its category; `predicts` is False (and the row nan) for a score with neither. A rate's
    prediction is the sum over its categories.
    """
    matrix, from_probabilities = probability_rows(raws, keys)
    categories_of = np.array([category_index.get(c, -1) for c in category_ids], dtype=np.int64)
    fallback = ~from_probabilities & (categories_of >= 0)
    matrix[fallback] = 0.0
    matrix[np.flatnonzero(fallback), categories_of[fallback]] = 1.0
    return matrix, from_probabilities, from_probabilities | fallback


def score_prediction(
    *, raw_probabilities, category_id: int | None, keys: list[str], category_index: dict[int, int]
) -> tuple[list[float], bool] | None:
    """`score_predictions` for one score: its row and whether it came from probabilities, or None."""
    matrix, from_probabilities, predicts = score_predictions(
        raws=[raw_probabilities], category_ids=[category_id], keys=keys, category_index=category_index
    )
    return (matrix[0].tolist(), bool(from_probabilities[0])) if predicts[0] else None


def _population_rows(plan: str, filters: StatsFilters, versions: list[ScorerVersion]) -> list[tuple]:
    """One row per (population output, matching score), or one with NULL score columns: ONE query."""
    source, where, params, columns = _population_from(plan, filters)
    match = " OR ".join("(s.scorer_id = %s AND s.scorer_version = %s)" for _ in versions)
    sql = (
        f"SELECT x.output_id, x.endpoint_id, p.group_id, {columns}, "
        f"s.scorer_id, s.scorer_version, s.category_id, s.probabilities {source} "
        f"LEFT JOIN {_SCORE} s ON s.output_id = x.output_id AND s.status = %s AND NOT s.is_unparseable "
        f"AND ({match}) WHERE {' AND '.join(where)} ORDER BY x.output_id"
    )
    version_params = [p for v in versions for p in (v.scorer.pk, v.version)]
    return _fetch(sql, [_DONE, *version_params, *params])


def machine_assisted_population(
    *, filters: StatsFilters, campaign: Campaign, scorer_id: int | None = None
) -> Population | None:
    """The population arrays and the predictions of the chosen scorer versions, or None if none has scores.

    Without a chosen scorer and without scores this costs one query; otherwise the versions' query
    (when not chosen), the population query and three small ones (categories, models, groups).
    """
    versions, choice = _chosen_versions(campaign, filters, scorer_id)
    if not versions:
        return None
    rows = _population_rows(campaign.sampling_plan, filters, versions)
    if campaign.sampling_plan == Campaign.SamplingPlan.ALL and (campaign.sampling or {}).get("gold_outside"):
        outside = set(campaign.sampling["gold_outside"])  # gold the plan did not draw: in no estimate
        rows = [r for r in rows if r[0] not in outside]
    categories = tuple(
        campaign.scheme.categories.order_by("order").values_list("pk", "key", "name", "counts_as_refusal")
    )
    output_ids = np.array([r[0] for r in rows], dtype=np.int64)
    first = np.ones(output_ids.size, dtype=bool)
    first[1:] = output_ids[1:] != output_ids[:-1]  # rows come ordered by output
    position = np.cumsum(first) - 1
    heads = [r for r, is_first in zip(rows, first.tolist(), strict=True) if is_first]
    model_ids = sorted({r[1] for r in heads})
    group_ids = sorted({r[2] for r in heads})
    models = list(ModelEndpoint.objects.filter(pk__in=model_ids).order_by("name").values_list("pk", "name"))
    groups = list(
        Group.objects.filter(pk__in=group_ids)
        .order_by("name")
        .values_list("pk", "name", "is_control", "axis_id")
    )
    model_index = {pk: i for i, (pk, _) in enumerate(models)}
    group_index = {pk: i for i, (pk, *_rest) in enumerate(groups)}
    category_index = {pk: i for i, (pk, *_rest) in enumerate(categories)}
    keys = [c[1] for c in categories]
    n, k = len(heads), len(categories)
    is_refusal = np.array([c[3] for c in categories], dtype=bool)
    scored = [j for j, row in enumerate(rows) if row[6] is not None]
    matrix, _, predicts = score_predictions(
        raws=[rows[j][9] for j in scored], category_ids=[rows[j][8] for j in scored],
        keys=keys, category_index=category_index,
    )  # fmt: skip
    row_position = position[np.array(scored, dtype=np.int64)] if scored else np.zeros(0, dtype=np.int64)
    version_of = [(rows[j][6], rows[j][7]) for j in scored]
    predictions = []
    for v in versions:
        mine = predicts & np.fromiter(
            (pair == (v.scorer.pk, v.version) for pair in version_of), dtype=bool, count=len(scored)
        )
        usable, per_category = np.zeros(n, dtype=bool), np.full((n, k), np.nan)
        usable[row_position[mine]] = True
        per_category[row_position[mine]] = matrix[mine]
        refusal = np.minimum(1.0, per_category[:, is_refusal].sum(1))  # nan stays nan
        predictions.append(ScorerPredictions(v, usable, refusal, per_category))
    return Population(
        plan=campaign.sampling_plan,
        categories=categories,
        models=tuple(name for _, name in models),
        groups=tuple((name, is_control, axis) for _, name, is_control, axis in groups),
        model=np.array([model_index[r[1]] for r in heads], dtype=np.int64),
        group=np.array([group_index[r[2]] for r in heads], dtype=np.int64),
        pi=np.array([r[3] for r in heads], dtype=float),
        drawn=np.array([bool(r[4]) for r in heads], dtype=bool),
        final=np.array([category_index.get(r[5], -1) for r in heads], dtype=np.int64),
        predictions=tuple(predictions),
        scorer_choice=choice,
    )
