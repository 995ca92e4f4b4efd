"""Machine-assisted estimates: the `machine_assisted` tables of the dashboard report.

Per scorer version, model and group (a cell), for the refusal rate and each category's rate, three
estimates side by side (pure statistics from annotations/stats/ppi.py, Wald 95% intervals):

- Population: the campaign's frame rows, or its items for plan "all"
  (annotations/analysis/machine_assisted_data.py). Y = 1 when the item's human final label counts
  as refusal (for a category's rate: when it is that category); labelled = drawn outputs whose item
  has a final label. Yhat = the scorer's prediction (probabilities when it gave them, else 0/1).
- Human labels only: `classical_mean_ci` on the labelled Y, weighted by 1/pi (Hajek) for the
  stratified and active plans.
- PPI++: `ppi_mean_ci(Y, Yhat_labelled, Yhat_unlabelled)`, unlabelled = the cell's other outputs.
  Undefined when some output of the cell has no usable score (the count is in the reason), and for
  the active plan, whose labelled outputs are not a uniform sample (the active estimate is its own).
- Active inference: `active_mean_ci` with the stored inclusion probabilities, only for plan
  "active", and undefined while a drawn output of the cell has no final label: pi is the chance of
  being drawn, so a drawn output left unlabelled breaks the weighting.

Interval width w = ci_high - ci_low. Effective human labels saved by a method with width w_m:
n (w_human / w_m)^2 - n, the labels the human-only estimate would need to be as narrow (its width
shrinks as 1 / sqrt(n)) minus the n used; undefined when either width is. Differences from each
axis's control group (`differences_from_control`, Holm across the axis's groups) go in
`machine_assisted_differences`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from django.conf import settings

from annotations.analysis.machine_assisted_data import (
    WEIGHTED_PLANS,
    Population,
    ScorerPredictions,
    machine_assisted_population,
)
from annotations.analysis.report_cells import number
from annotations.analysis.report_cells import table as _table
from annotations.analysis.selectors import StatsFilters
from annotations.models import Campaign
from annotations.stats import StatsInputError
from annotations.stats.ppi import (
    MeanEstimate,
    Method,
    active_mean_ci,
    classical_mean_ci,
    differences_from_control,
    ppi_mean_ci,
    too_few_labels_reason,
)

MACHINE_ASSISTED_TABLES = ("machine_assisted", "machine_assisted_differences")
METHODS = (("human", "Human labels only"), ("ppi", "PPI++"), ("active", "Active inference"))
ALPHA = 0.05
NOTHING_SCORED = "No scorer version has finished scores on this population yet."
_METHOD_OF: dict[str, Method] = {"human": "classical", "ppi": "ppi", "active": "active"}

ASSUMPTIONS = (
    (
        "The human sample follows the stored plan: the labelled outputs are the ones the plan drew, with "
        "the stored inclusion probabilities, and whether a drawn output has its final label yet does not "
        "depend on what it says."
    ),
    (
        "The scorer was fixed before the draw: neither it nor its prompt, threshold or training data was "
        "tuned on these human labels (its errors on them would then look smaller than they are)."
    ),
    (
        "Each output is one independent draw of the model's behaviour on the group's prompts; the "
        "intervals are Wald 95% intervals for that rate (slightly conservative for the cell's actual "
        "outputs), not clipped to [0, 1], and assume enough labels per cell for a normal approximation."
    ),
    (
        "Human labels saved = n (human-only width / method width)^2 - n: the extra labels the human-only "
        "estimate would need to be as narrow."
    ),
)


def _undefined(method: Method, reason: str, *, n_labelled: int = 0) -> MeanEstimate:
    return MeanEstimate(method, None, n_labelled=n_labelled, reason=reason)


def _safely(method: Method, n_labelled: int, call: Callable[[], MeanEstimate]) -> MeanEstimate:
    try:
        return call()
    except StatsInputError as error:  # e.g. a stored probability outside (0, 1]
        return _undefined(method, str(error), n_labelled=n_labelled)


def _cell(estimate: MeanEstimate) -> dict:
    return {
        "value": number(estimate.value),
        "reason": estimate.reason,
        "n": estimate.n_labelled,
        "ci_low": number(estimate.ci_low),
        "ci_high": number(estimate.ci_high),
        "se": number(estimate.se),
    }


def _width(estimate: MeanEstimate) -> float | None:
    if estimate.ci_low is None or estimate.ci_high is None:
        return None
    return estimate.ci_high - estimate.ci_low


def _width_cell(estimate: MeanEstimate) -> dict:
    width = _width(estimate)
    reason = None if width is not None else "see the estimate"
    return {"value": width, "reason": reason, "n": estimate.n_labelled, "ci_low": None, "ci_high": None}


def _saved_cell(human: MeanEstimate, other: MeanEstimate, name: str) -> dict:
    """n (w_human / w_other)^2 - n, with n the human labels used."""
    w_human, w_other = _width(human), _width(other)
    n = human.n_labelled
    if w_human is None or w_other is None:
        which = "human-only" if w_human is None else name
        value, reason = None, f"the {which} interval is undefined"
    else:
        value, reason = n * (w_human / w_other) ** 2 - n, None
    return {"value": value, "reason": reason, "n": n, "ci_low": None, "ci_high": None}


def cell_estimates(
    *, plan: str, y: np.ndarray, yhat: np.ndarray, usable: np.ndarray, drawn: np.ndarray,
    labelled: np.ndarray, pi: np.ndarray,
) -> dict[str, MeanEstimate]:  # fmt: skip
    """The human-only, PPI++ and active estimates of one rate in one cell (see the module docstring)."""
    n_labelled = int(labelled.sum())
    weights = pi[labelled] if plan in WEIGHTED_PLANS else None
    # the scorer's predicted rate over the whole cell: fixed before any draw, blind to the labels
    predicted_rate = float(yhat[usable].mean()) if usable.any() else None
    too_few = too_few_labels_reason(
        n_labelled,
        minimum=settings.AUDIT_MACHINE_ASSISTED_MIN_LABELS,
        predicted_rate=predicted_rate,
        min_expected=settings.AUDIT_MACHINE_ASSISTED_MIN_EXPECTED,
    )
    # every method's interval is a Wald interval: none is shown below the minimum (see the rule's
    # docstring); with none or one label the estimators' own reasons say it better
    if too_few and n_labelled >= 2:
        return {name: _undefined(kind, too_few, n_labelled=n_labelled) for name, kind in _METHOD_OF.items()}
    human = _safely("classical", n_labelled, lambda: classical_mean_ci(y[labelled], pi=weights, alpha=ALPHA))
    missing = int((~usable).sum())
    no_score = (
        f"{missing} of the cell's {usable.size} outputs have no usable score from this scorer version"
        " (none, unfinished or unparseable)"
    )
    if plan == Campaign.SamplingPlan.ACTIVE:
        ppi = _undefined(
            "ppi",
            "the active plan draws uncertain outputs more often, so the labelled ones are not a uniform "
            "sample: see the active estimate",
            n_labelled=n_labelled,
        )
    elif missing:
        ppi = _undefined("ppi", no_score, n_labelled=n_labelled)
    else:
        ppi = _safely(
            "ppi", n_labelled, lambda: ppi_mean_ci(y[labelled], yhat[labelled], yhat[~labelled], alpha=ALPHA)
        )
    waiting = int((drawn & ~labelled).sum())
    if plan != Campaign.SamplingPlan.ACTIVE:
        active = _undefined(
            "active",
            f"the sampling plan is {Campaign.SamplingPlan(plan).label.lower()}, not active",
            n_labelled=n_labelled,
        )
    elif waiting:
        active = _undefined(
            "active",
            f"{waiting} of the cell's {int(drawn.sum())} drawn outputs have no final label yet; pi is the "
            "chance of being drawn, so every drawn output needs its label",
            n_labelled=n_labelled,
        )
    elif missing:
        active = _undefined("active", no_score, n_labelled=n_labelled)
    else:
        active = _safely(
            "active",
            n_labelled,
            lambda: active_mean_ci(y[drawn], yhat[drawn], yhat[~drawn], pi[drawn], alpha=ALPHA),
        )
    return {"human": human, "ppi": ppi, "active": active}


def _cells(population: Population) -> list[tuple[int, int, np.ndarray]]:
    """(model, group, positions of its outputs) of every non-empty cell, by model then group."""
    n_groups = len(population.groups)
    code = population.model * n_groups + population.group
    order = np.argsort(code, kind="stable")
    bounds = np.searchsorted(code[order], np.arange(len(population.models) * n_groups + 1))
    return [
        (c // n_groups, c % n_groups, order[bounds[c] : bounds[c + 1]])
        for c in range(len(population.models) * n_groups)
        if bounds[c + 1] > bounds[c]
    ]


def _outcomes(
    population: Population, predictions: ScorerPredictions
) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """(key, name, Y over the population, Yhat over the population) for refusal and every category."""
    final = population.final
    has_final = final >= 0
    is_refusal = np.array([c[3] for c in population.categories], dtype=bool)
    refused = has_final & is_refusal[np.where(has_final, final, 0)]
    outcomes = [("refusal", "Refusal", refused.astype(float), predictions.refusal)]
    for k, (_, key, name, _refusal) in enumerate(population.categories):
        outcomes.append((key, name, (final == k).astype(float), predictions.category[:, k]))
    return outcomes


def _differences(population: Population, estimates: dict, label: str) -> list[dict]:
    """Rows of every group minus its axis's control group, per model, rate and method (Holm per family)."""
    rows = []
    axes: dict[int, list[int]] = {}
    for g, (_, _, axis) in enumerate(population.groups):
        axes.setdefault(axis, []).append(g)
    # The method that does not apply to the plan (PPI under active, active otherwise) has no rows here.
    skipped = "ppi" if population.plan == Campaign.SamplingPlan.ACTIVE else "active"
    for (model, outcome, method), by_group in estimates.items():
        if method == skipped:
            continue
        for members in axes.values():
            present = [g for g in members if g in by_group]
            controls = [g for g in present if population.groups[g][1]]
            if not controls or len(present) < 2:
                continue
            control = controls[0]
            differences = differences_from_control(
                [by_group[g] for g in present], control=present.index(control), alpha=ALPHA
            )
            for difference in differences:
                g = present[difference.group]
                rows.append(
                    {
                        "scorer": label,
                        "model": population.models[model],
                        "outcome": outcome,
                        "method": dict(METHODS)[method],
                        "group": population.groups[g][0],
                        "control": population.groups[control][0],
                        "difference": {
                            "value": number(difference.value),
                            "reason": difference.reason,
                            "n": by_group[g].n_labelled + by_group[control].n_labelled,
                            "ci_low": number(difference.ci_low),
                            "ci_high": number(difference.ci_high),
                        },
                        "p_value": number(difference.p_value),
                        "p_holm": number(difference.p_holm),
                        "reject": difference.reject,
                    }
                )
    return rows


def _block_rows(population: Population, predictions: ScorerPredictions) -> tuple[list[dict], list[dict]]:
    label = predictions.version.label
    labelled_all = population.drawn & (population.final >= 0)
    outcomes = _outcomes(population, predictions)
    rows, estimates = [], {}
    for m, g, idx in _cells(population):
        group, is_control, _axis = population.groups[g]
        usable, labelled = predictions.usable[idx], labelled_all[idx]
        for key, name, y, yhat in outcomes:
            found = cell_estimates(
                plan=population.plan, y=y[idx], yhat=yhat[idx], usable=usable,
                drawn=population.drawn[idx], labelled=labelled, pi=population.pi[idx],
            )  # fmt: skip
            for method, estimate in found.items():
                estimates.setdefault((m, name, method), {})[g] = estimate
            human, ppi, active = found["human"], found["ppi"], found["active"]
            rows.append(
                {
                    "scorer": label,
                    "model": population.models[m],
                    "group": group,
                    "is_control": is_control,
                    "outcome": name,
                    "outcome_key": key,
                    "outputs": int(idx.size),
                    "labelled": int(labelled.sum()),
                    "waiting": int((population.drawn[idx] & ~labelled).sum()),
                    "unscored": int((~usable).sum()),
                    "human": _cell(human),
                    "human_width": _width_cell(human),
                    "ppi": _cell(ppi),
                    "ppi_width": _width_cell(ppi),
                    "ppi_lambda": number(ppi.lam) if ppi.is_defined else None,
                    "ppi_saved": _saved_cell(human, ppi, "PPI++"),
                    "active": _cell(active),
                    "active_width": _width_cell(active),
                    "active_lambda": number(active.lam) if active.is_defined else None,
                    "active_saved": _saved_cell(human, active, "active"),
                }
            )
    return rows, _differences(population, estimates, label)


def _waiting_note(population: Population) -> str | None:
    """What the estimates rest on while drawn outputs still lack a final label (None when none does)."""
    drawn = int(population.drawn.sum())
    waiting = int((population.drawn & (population.final < 0)).sum())
    if not waiting:
        return None
    if population.plan == Campaign.SamplingPlan.ACTIVE:
        return (
            f"{waiting:,} of the {drawn:,} outputs the plan drew have no final label yet: the active "
            "estimates of their cells stay undefined until every drawn output is labelled."
        )
    drawn_text = (
        "outputs of the campaign (plan: all)"
        if population.plan == Campaign.SamplingPlan.ALL
        else ("outputs the plan drew")
    )
    return (
        f"{waiting:,} of the {drawn:,} {drawn_text} have no final label yet (not labelled, or disputed "
        "and waiting for adjudication). The human-only and PPI++ estimates use the labelled ones as if "
        "they were a random sample of those; outputs the annotators disagree on wait longer and are "
        "not like the rest (refusals and partial answers are disputed more often), so until the "
        "campaign is finished these estimates can be biased: finish it before relying on them."
    )


def machine_assisted_tables(
    *, filters: StatsFilters, campaign: Campaign, scorer_id: int | None = None
) -> tuple[dict[str, dict], dict]:
    """The tables (keys in MACHINE_ASSISTED_TABLES) and what they rest on: plan, scorers, assumptions."""
    population = machine_assisted_population(filters=filters, campaign=campaign, scorer_id=scorer_id)
    rows, differences = [], []
    for predictions in population.predictions if population else ():
        block, block_differences = _block_rows(population, predictions)
        rows += block
        differences += block_differences
    plan = Campaign.SamplingPlan(campaign.sampling_plan)
    notes = [_waiting_note(population)] if population else [NOTHING_SCORED]
    meta = {
        "sampling_plan": plan.value,
        "sampling_plan_label": plan.label,
        "scorers": [p.version.label for p in population.predictions] if population else [],
        "scorer_choice": population.scorer_choice if population else "",
        "alpha": ALPHA,
        "assumptions": [*(note for note in notes if note), *ASSUMPTIONS],
    }
    estimate_columns = []
    for method, title in METHODS:
        estimate_columns += [(method, f"{title} (95%)", "rate"), (f"{method}_width", "Width", "rate")]
        if method != "human":
            estimate_columns += [
                (f"{method}_lambda", "lambda", "float"),
                (f"{method}_saved", "Human labels saved", "labels"),
            ]
    tables = {
        "machine_assisted": _table(
            "machine_assisted",
            "Machine-assisted estimates: human labels only, PPI++ and active inference, per model and group",
            [
                ("scorer", "Scorer @version", "text"),
                ("model", "Model", "text"),
                ("group", "Group", "text"),
                ("outcome", "Rate of", "text"),
                ("outputs", "Outputs", "int"),
                ("labelled", "Human labels used", "int"),
                ("waiting", "Drawn, no final label yet", "int"),
                ("unscored", "Without a usable score", "int"),
                *estimate_columns,
            ],
            rows,
        ),
        "machine_assisted_differences": _table(
            "machine_assisted_differences",
            "Machine-assisted estimates: each group minus its axis's control group (Holm across groups)",
            [
                ("scorer", "Scorer @version", "text"),
                ("model", "Model", "text"),
                ("outcome", "Rate of", "text"),
                ("method", "Method", "text"),
                ("group", "Group", "text"),
                ("control", "Control group", "text"),
                ("difference", "Difference (95%)", "rate"),
                ("p_value", "p", "p"),
                ("p_holm", "p (Holm)", "p"),
                ("reject", "Significant at 5% (Holm)", "bool"),
            ],
            differences,
        ),
    }
    return tables, meta
