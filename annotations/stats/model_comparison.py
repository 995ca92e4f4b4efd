"""Model-to-model comparison of refusal rates: did the disparity change between two models (or versions)?

Inputs are refusal counts `successes` and outputs `n` shaped (models, groups) for the same prompt set
answered by every model. Three questions, three answers:

- how much each group's rate moved between two models: `rate_change`, p_a - p_b with Newcombe's
  (1998, method 10) hybrid Wilson interval (as the pairwise group comparisons);
- how much a group's gap to the control group moved: `gap_change`, (p_ga - p_ca) - (p_gb - p_cb), a
  difference of differences of four independent binomial rates with the Wald interval
  d +/- z sqrt(sum p(1 - p) / n) (Agresti, Categorical Data Analysis, 3rd ed., section 1.4);
- whether the disparity changed at all: `interaction_test`, the likelihood-ratio test of the
  model x group interaction in the binomial GLM refusal ~ C(model) + C(group) (+ C(model):C(group)),
  G^2 = 2 (llf_saturated - llf_additive) on (non-empty cells - rank of the additive design) degrees of
  freedom; with exactly two models it is joined by the Breslow-Day test (Breslow and Day 1980; as in
  statsmodels' StratifiedTable.test_equal_odds) that the model odds ratio is the same in every group.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.stats as sps

from annotations.stats.disparity import (
    Z_95,
    Estimate,
    StatsInputError,
    _as_counts,
    _difference_estimate,
    cmh_test,
)


def rate_change(x_a: int, n_a: int, x_b: int, n_b: int) -> Estimate:
    """p_a - p_b with Newcombe's interval; undefined when either model has no output in the group."""
    return _difference_estimate(x_a, n_a, x_b, n_b)


def gap_change(
    group_a: tuple[int, int],
    control_a: tuple[int, int],
    group_b: tuple[int, int],
    control_b: tuple[int, int],
    *,
    z: float = Z_95,
) -> Estimate:
    """(p_ga - p_ca) - (p_gb - p_cb) with its Wald interval (module docstring), each argument a
    (refusals, outputs) pair: positive when group g's gap to the control c is larger under model a
    than under model b. Undefined when a cell is empty, or when each of the four rates is 0 or 1 (the
    Wald variance is then 0: no interval can be given).
    """
    cells = (group_a, control_a, group_b, control_b)
    total = sum(n for _, n in cells)
    if any(n == 0 for _, n in cells):
        return Estimate.undefined("a group or the control has no outputs under one of the models", n=total)
    p = [x / n for x, n in cells]
    value = (p[0] - p[1]) - (p[2] - p[3])
    variance = sum(pi * (1 - pi) / n for pi, (_, n) in zip(p, cells, strict=True))
    if variance == 0:
        return Estimate.undefined("every rate is 0% or 100%: the Wald interval has no width", n=total)
    half = z * math.sqrt(variance)
    return Estimate(value=value, n=total, ci_low=value - half, ci_high=value + half)


@dataclass(frozen=True)
class InteractionTest:
    """LR test of the model x group interaction on refusal, and Breslow-Day with two models."""

    statistic: float | None
    dof: int | None
    p_value: float | None
    breslow_day_p: float | None
    n: int
    reason: str | None = None


def interaction_test(successes: npt.ArrayLike, n: npt.ArrayLike) -> InteractionTest:
    """G^2 of refusal ~ C(model) * C(group) against refusal ~ C(model) + C(group) (module docstring).

    Empty cells are dropped; the saturated model fits every remaining cell exactly, so its
    log-likelihood is the binomial one at the observed rates.
    """
    import statsmodels.api as sm

    x, m = _as_counts(successes, n)
    if x.ndim != 2:
        raise StatsInputError("need (n_models, n_groups) arrays")
    total = int(m.sum())
    model_idx, group_idx = np.nonzero(m > 0)
    models, groups = np.unique(model_idx), np.unique(group_idx)
    if models.size < 2:
        return InteractionTest(None, None, None, None, total, reason="fewer than two models have outputs")
    if groups.size < 2:
        return InteractionTest(None, None, None, None, total, reason="fewer than two groups have outputs")
    y, k = x[model_idx, group_idx].astype(float), m[model_idx, group_idx].astype(float)
    if y.sum() == 0 or y.sum() == k.sum():
        reason = "the outcome never varies: every output has the same outcome"
        return InteractionTest(None, None, None, None, total, reason=reason)
    design = np.hstack(
        [
            np.ones((y.size, 1)),
            (model_idx[:, None] == models[None, 1:]).astype(float),
            (group_idx[:, None] == groups[None, 1:]).astype(float),
        ]
    )
    dof = int(y.size - np.linalg.matrix_rank(design))
    if dof < 1:
        reason = "no interaction to test: each model answered a different set of groups"
        return InteractionTest(None, None, None, None, total, reason=reason)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        additive = sm.GLM(np.column_stack([y, k - y]), design, family=sm.families.Binomial()).fit()
    rate = y / k
    with np.errstate(divide="ignore", invalid="ignore"):
        saturated_terms = np.where(y > 0, y * np.log(rate), 0.0) + np.where(
            k - y > 0, (k - y) * np.log1p(-rate), 0.0
        )
    fitted = np.clip(additive.fittedvalues, 1e-300, 1 - 1e-16)
    additive_terms = y * np.log(fitted) + (k - y) * np.log1p(-fitted)
    statistic = max(0.0, 2.0 * float(saturated_terms.sum() - additive_terms.sum()))
    breslow = None
    if models.size == 2:
        a, b = models
        tables = np.stack([[[x[a, g], m[a, g] - x[a, g]], [x[b, g], m[b, g] - x[b, g]]] for g in groups])
        breslow = cmh_test(tables).breslow_day_p
    return InteractionTest(statistic, dof, float(sps.chi2.sf(statistic, dof)), breslow, total)
