"""Sampling plans: which outputs of a campaign's selection humans label, and each one's inclusion probability.

The population is the done outputs the selection picks, in primary-key order; the pure draws are in
`annotations.stats.sampling` (seeded with the campaign's seed, so the same selection, plan and seed give
the same items and probabilities). This module checks a plan's settings, builds the arrays the draws
take with aggregate reads (never a query per output), and says what was drawn (`Campaign.sampling`):

- "all": every output, probability 1 (no frame rows: the population is the items).
- "uniform": a simple random sample of n outputs, or round(fraction x N); pi = n / N.
- "stratified": n outputs per cell (model x the prompt's group), capped at the cell's size.
- "active": Poisson sampling, pi growing with the scorer's uncertainty (from the category probabilities
  of its current version's DONE scores), mixed with a uniform floor, with sum pi = budget. Every output
  of the population needs such a score: the scorer is run before the campaign is created, and its
  version is recorded, so the scores that drove the draw are known (they cannot depend on the labels).

A selection's `sample` (N outputs at random) is the uniform plan with budget N, capped at the population.
`sampling_plan_write` then inserts the drawn outputs as items (each with its pi), gold outputs outside
the draw as items with pi 1 and no drawn frame row (left out of estimates), and the frame.
"""

import inspect
import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
from django.db.models import QuerySet

from annotations.core.exceptions import AuditError
from annotations.labelling.suggestions import scorer_assigns_categories
from annotations.models import Campaign, CampaignFrameOutput, CampaignItem, LabelCategory, LabelScheme
from annotations.stats.sampling import SampleDraw, sample_active, sample_stratified, sample_uniform
from inference.models import Output, Score, Scorer
from inference.scorers.probabilities import probability_rows

_BATCH = 5000
Plan = Campaign.SamplingPlan
DEFAULT_UNIFORM_SHARE: float = inspect.signature(sample_active).parameters["uniform_share"].default
UNCERTAINTY_RULE = "sqrt_variance"
# The campaign_create parameters of a plan; all are fixed once the campaign exists.
SAMPLING_FIELDS = (
    "sampling_plan", "sampling_budget", "sampling_fraction", "sampling_per_cell", "sampling_scorer",
    "sampling_uniform_share",
)  # fmt: skip
SAMPLING_FIXED = (
    "the sampling plan is fixed when the campaign is created (the estimates rely on the draw); "
    "create a new campaign for another plan"
)
# Which settings each plan takes (the scorer is optional for every plan, required for "active").
_TAKES = {
    Plan.ALL: set(),
    Plan.UNIFORM: {"budget", "fraction"},
    Plan.STRATIFIED: {"per_cell"},
    Plan.ACTIVE: {"budget", "uniform_share"},
}


def _error(field: str, message: str) -> AuditError:
    return AuditError(f"{field}: {message}", errors=[{"row": None, "field": field, "message": message}])


@dataclass(frozen=True)
class PlanRequest:
    """A campaign's sampling settings as given; `from_sample` marks a uniform plan made from `sample`."""

    plan: str = Plan.ALL
    budget: int | None = None
    fraction: float | None = None
    per_cell: int | None = None
    scorer: Scorer | None = None
    uniform_share: float | None = None
    from_sample: bool = False


@dataclass(frozen=True)
class PlanDraw:
    """The population (output, run, model, prompt; pk order), each output's pi, what was drawn, the record."""

    rows: list[tuple[int, int, int, int]]
    probabilities: np.ndarray
    drawn: np.ndarray
    record: dict


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def sampling_plan_from_sample(request: PlanRequest, sample: object) -> PlanRequest:
    """The plan a selection's `sample` stands for: uniform with that budget; refused beside another plan."""
    if not _whole(sample) or sample < 1:
        raise _error("selection.sample", "must be a positive whole number")
    if request.plan != Plan.ALL:
        raise _error(
            "selection.sample",
            f"a sample is the uniform plan; with sampling_plan {request.plan!r} leave selection.sample out",
        )
    return replace(request, plan=Plan.UNIFORM, budget=sample, from_sample=True)


def _check_scorer(scorer: Scorer, scheme: LabelScheme) -> None:
    if not scorer.is_active:
        raise _error("sampling_scorer", f"scorer {scorer.name!r} is not active")
    if not scorer_assigns_categories(scorer):
        raise _error(
            "sampling_scorer", f"scorer {scorer.name!r} only flags outputs; it assigns no categories"
        )
    if scorer.scheme_id != scheme.pk:
        raise _error(
            "sampling_scorer",
            f"scorer {scorer.name!r} uses the label scheme {scorer.scheme.key!r}, "
            f"the campaign uses {scheme.key!r}",
        )


def _check_settings(request: PlanRequest, plan: Plan) -> None:
    """Only the settings the plan takes, each a number in its range."""
    for name in ("budget", "fraction", "per_cell", "uniform_share"):
        if getattr(request, name) is not None and name not in _TAKES[plan]:
            raise _error(f"sampling_{name}", f"the {plan.value!r} plan takes no {name.replace('_', ' ')}")
    if request.budget is not None and (not _whole(request.budget) or request.budget < 1):
        raise _error("sampling_budget", "must be a whole number of at least 1")
    if request.fraction is not None and (not _number(request.fraction) or not 0 < request.fraction <= 1):
        raise _error("sampling_fraction", "must be a number above 0 and at most 1")
    if request.per_cell is not None and (not _whole(request.per_cell) or request.per_cell < 1):
        raise _error("sampling_per_cell", "must be a whole number of at least 1")
    share = request.uniform_share
    if share is not None and (not _number(share) or not 0 < share <= 1):
        raise _error("sampling_uniform_share", "must be above 0 and at most 1 (every output needs pi > 0)")


def _check_required(request: PlanRequest, plan: Plan) -> PlanRequest:
    """The settings the plan needs; the active plan's uniform share defaults to the statistics' default."""
    if plan == Plan.UNIFORM and (request.budget is None) == (request.fraction is None):
        raise _error(
            "sampling_budget", "the uniform plan needs exactly one of sampling_budget and sampling_fraction"
        )
    if plan == Plan.STRATIFIED and request.per_cell is None:
        raise _error("sampling_per_cell", "the stratified plan needs the number of outputs per model x group")
    if plan != Plan.ACTIVE:
        return request
    if request.budget is None:
        raise _error(
            "sampling_budget", "the active plan needs a budget: the expected number of outputs drawn"
        )
    if request.scorer is None:
        raise _error("sampling_scorer", "the active plan needs the scorer whose uncertainty drives the draw")
    share = DEFAULT_UNIFORM_SHARE if request.uniform_share is None else float(request.uniform_share)
    return replace(request, uniform_share=share)


def sampling_plan_check(request: PlanRequest, *, scheme: LabelScheme, seed: int) -> PlanRequest:
    """AuditError naming the field unless the settings fit the plan; the request with its defaults filled.

    Checks what needs no population: the plan exists, it gets only the settings it takes, each in range,
    and the scorer can score the campaign's scheme. `sampling_plan_draw` checks the rest.
    """
    if request.plan not in Plan.values:
        raise _error("sampling_plan", f"must be one of {Plan.values}")
    plan = Plan(request.plan)
    _check_settings(request, plan)
    request = _check_required(request, plan)
    if request.scorer is not None:
        _check_scorer(request.scorer, scheme)
    if plan == Plan.ACTIVE and request.scorer.kind == Scorer.Kind.STRING_MATCH:
        raise _error(
            "sampling_scorer",
            f"scorer {request.scorer.name!r} is a string match, which gives no category probabilities; "
            "active sampling needs a judge, a classifier or imported scores with probabilities",
        )
    if plan != Plan.ALL and (not _whole(seed) or seed < 0):
        raise _error("seed", "a sampling plan needs a non-negative whole number as its seed")
    return request


def _scorer_probabilities(*, scorer: Scorer, scheme: LabelScheme, ids: list[int]) -> np.ndarray:
    """(N, K) category probabilities of the scorer's current version for the outputs `ids`, in that order.

    One query per _BATCH outputs, each a lookup on the unique (scorer, version, output) index (never one
    per output; an `output IN (population)` join can be planned as a nested loop on freshly written,
    not yet analysed tables). AuditError (sampling_scorer) saying how many outputs lack usable
    probabilities (no DONE score of this version, unparseable, or no probabilities) if any does.
    """
    keys = list(scheme.categories.order_by("order").values_list("key", flat=True))
    position = {pk: i for i, pk in enumerate(ids)}
    matrix = np.full((len(ids), len(keys)), np.nan)
    scores = Score.objects.filter(scorer=scorer, scorer_version=scorer.version, status=Score.Status.DONE)
    for start in range(0, len(ids), _BATCH):
        chunk = scores.filter(output_id__in=ids[start : start + _BATCH]).order_by()
        found = list(chunk.values_list("output_id", "probabilities"))
        rows, usable = probability_rows([p for _, p in found], keys)  # inference/scorers/probabilities.py
        at = np.array([position[output_id] for output_id, _ in found], dtype=np.int64)
        matrix[at[usable]] = rows[usable]
    missing = int(np.isnan(matrix[:, 0]).sum()) if keys else len(ids)
    if missing:
        raise _error(
            "sampling_scorer",
            f"run the scorer first: {missing:,} of {len(ids):,} outputs have no probabilities from "
            f"{scorer.name!r} @{scorer.version}",
        )
    return matrix


def _cells(rows: list[tuple]) -> np.ndarray:
    """One integer per output: its (model, prompt's group) cell, numbered in sorted order."""
    pairs = [(endpoint, -1 if group is None else group) for _, _, endpoint, _, group in rows]
    number = {pair: i for i, pair in enumerate(sorted(set(pairs)))}
    return np.array([number[pair] for pair in pairs], dtype=np.int64)


def _draw(request: PlanRequest, *, rows: list[tuple], scheme: LabelScheme, seed: int) -> SampleDraw:
    n = len(rows)
    if request.plan == Plan.UNIFORM:
        return sample_uniform(n, n=request.budget, fraction=request.fraction, seed=seed)
    if request.plan == Plan.STRATIFIED:
        return sample_stratified(_cells(rows), n_per_cell=request.per_cell, seed=seed)
    probabilities = _scorer_probabilities(scorer=request.scorer, scheme=scheme, ids=[row[0] for row in rows])
    return sample_active(
        probabilities,
        budget=request.budget,
        uniform_share=request.uniform_share,
        rule=UNCERTAINTY_RULE,
        seed=seed,
    )


def sampling_plan_draw(
    request: PlanRequest, *, population: QuerySet[Output], scheme: LabelScheme, seed: int
) -> PlanDraw:
    """Draw a checked plan (`sampling_plan_check`) from the population; AuditError naming the field if the
    population cannot take it (a budget above its size, a draw of nothing, an active scorer not yet run)."""
    rows = list(
        population.order_by("pk").values_list("pk", "run_id", "endpoint_id", "prompt_id", "prompt__group_id")
    )
    n = len(rows)
    if request.plan != Plan.ALL and not n:
        raise _error("selection", "no finished outputs match this selection")
    if request.from_sample:
        request = replace(request, budget=min(request.budget, n))
    if request.budget is not None and request.budget > n:
        raise _error("sampling_budget", f"must be at most the population's {n:,} outputs")
    if request.plan == Plan.ALL:
        probabilities, drawn, expected, cells = np.ones(n), np.ones(n, dtype=bool), float(n), None
    else:
        draw = _draw(request, rows=rows, scheme=scheme, seed=seed)
        probabilities, drawn, expected = draw.inclusion_probabilities, draw.selected, draw.expected_size
        cells = len(draw.strata) if request.plan == Plan.STRATIFIED else None
        if not drawn.any():
            field = "sampling_fraction" if request.fraction is not None else "sampling_budget"
            raise _error(field, f"the draw picked none of the {n:,} outputs; ask for more")
    record = {
        "budget": request.budget,
        "fraction": request.fraction,
        "per_cell": request.per_cell,
        "uniform_share": request.uniform_share,
        "uncertainty": UNCERTAINTY_RULE if request.plan == Plan.ACTIVE else None,
        "seed": seed,
        "population": n,
        "cells": cells,
        "expected_total": float(expected),
        "drawn": int(drawn.sum()),
        "scorer_version": request.scorer.version if request.scorer is not None else None,
    }
    return PlanDraw(rows=[row[:4] for row in rows], probabilities=probabilities, drawn=drawn, record=record)


def _bulk_create(model: type[CampaignItem | CampaignFrameOutput], rows: Iterator) -> int:
    """Insert `rows` _BATCH at a time (one statement each, so the items' statement triggers fire per
    batch, and a million unsaved rows never sit in memory together); returns how many."""
    count = 0
    while batch := list(itertools.islice(rows, _BATCH)):
        model.objects.bulk_create(batch)
        count += len(batch)
    return count


def _items(
    *, campaign: Campaign, draw: PlanDraw, gold_rows: dict[int, LabelCategory]
) -> Iterator[CampaignItem]:
    """The drawn outputs (with their probabilities) and the gold ones (probability 1 when outside the draw),
    by output id, ranked in the fixed random order drawn from the campaign's seed."""
    rows = {
        row[0]: (row, float(p))
        for row, p, drawn in zip(draw.rows, draw.probabilities, draw.drawn, strict=True)
        if drawn
    }
    outside = set(gold_rows) - set(rows)
    for row in Output.objects.filter(pk__in=outside).values_list("pk", "run_id", "endpoint_id", "prompt_id"):
        rows[row[0]] = (row, 1.0)
    output_ids = sorted(rows)
    ranks = list(range(len(output_ids)))
    random.Random(campaign.seed).shuffle(ranks)  # noqa: S311 (a reproducible order, not a secret)
    return (
        CampaignItem(
            campaign=campaign,
            output_id=output_id,
            run_id=rows[output_id][0][1],
            endpoint_id=rows[output_id][0][2],
            prompt_id=rows[output_id][0][3],
            rank=rank,
            is_gold=output_id in gold_rows,
            gold_category=gold_rows.get(output_id),
            inclusion_probability=rows[output_id][1],
        )
        for output_id, rank in zip(output_ids, ranks, strict=True)
    )


def _frame(*, campaign: Campaign, draw: PlanDraw) -> Iterator[CampaignFrameOutput]:
    return (
        CampaignFrameOutput(
            campaign=campaign,
            output_id=output_id,
            endpoint_id=endpoint_id,
            prompt_id=prompt_id,
            inclusion_probability=float(p),
            is_drawn=bool(drawn),
        )
        for (output_id, _, endpoint_id, prompt_id), p, drawn in zip(
            draw.rows, draw.probabilities, draw.drawn, strict=True
        )
    )


def sampling_plan_write(*, campaign: Campaign, draw: PlanDraw, gold_rows: dict[int, LabelCategory]) -> int:
    """Insert the items (drawn and gold) and, for every plan but "all", the frame; returns how many items."""
    items = _bulk_create(CampaignItem, _items(campaign=campaign, draw=draw, gold_rows=gold_rows))
    if campaign.sampling_plan != Plan.ALL:
        _bulk_create(CampaignFrameOutput, _frame(campaign=campaign, draw=draw))
    return items
