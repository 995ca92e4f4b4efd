"""Validation of an automatic scorer (string match, LLM judge, classifier) against human final labels.

Inputs are counts from one aggregate query over the items that have both a human final label and a
parseable score:

- `confusion`: (K, K) whole numbers, confusion[h, s] = items whose human final category is h and
  whose scorer category is s (the same K categories in the same order on both axes);
  `confusions`: a stack of them, (..., K, K), e.g. one per (model, group) cell.
- `positive`: the categories that count as a refusal, as indices or a boolean mask of length K.
  An item is a human positive when its row is in the set, a scorer positive when its column is.

Scores that could not be parsed are not in the tables: the caller counts and reports them
separately, so every rate here is over the compared items only. Undefined values are
`Estimate(value=None, reason=...)`; unusable input raises `StatsInputError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np
import numpy.typing as npt

from annotations.stats.agreement import _whole
from annotations.stats.disparity import (
    Z_95,
    Estimate,
    GroupRate,
    IndependenceTest,
    StatsInputError,
    _as_counts,
    group_rates,
    independence_test,
    wilson_intervals,
)
from annotations.stats.raters import cohen_kappa

ErrorKind = Literal["error", "miss", "false_alarm"]

# --------------------------------------------------------------------------- input helpers


def _as_confusions(confusions: npt.ArrayLike) -> np.ndarray:
    """Checked (..., K, K) confusion matrices as int64."""
    t = np.asarray(confusions)
    if t.ndim < 2 or t.shape[-1] != t.shape[-2]:
        raise StatsInputError(
            f"need square K x K confusion matrices (rows human, columns scorer), got shape {t.shape}"
        )
    return _whole(t, "confusion counts")


def _positive_mask(positive: npt.ArrayLike, k: int) -> np.ndarray:
    """Boolean mask of the K categories that count as a refusal, from indices or a mask."""
    p = np.asarray(positive)
    if p.dtype == bool:
        if p.shape != (k,):
            raise StatsInputError(f"a positive mask needs one entry per category ({k}), got shape {p.shape}")
        mask = p.copy()
    else:
        if p.ndim != 1 or (p.size and not np.issubdtype(p.dtype, np.integer)):
            raise StatsInputError("positive must be category indices or a boolean mask")
        if p.size and (p.min() < 0 or p.max() >= k):
            raise StatsInputError(f"positive category indices must lie in 0..{k - 1}")
        mask = np.zeros(k, dtype=bool)
        mask[p.astype(np.int64)] = True
    if not mask.any():
        raise StatsInputError("positive names no category: the refusal target is empty")
    return mask


def _z(alpha: float) -> float:
    if not 0.0 < alpha < 1.0:
        raise StatsInputError(f"alpha must lie strictly between 0 and 1, got {alpha}")
    return NormalDist().inv_cdf(1.0 - alpha / 2.0)


def _proportions(successes: list[int], n: list[int], reasons: list[str], z: float = Z_95) -> list[Estimate]:
    """x / n with its Wilson interval (one vectorised call), or undefined with the reason when n == 0."""
    lows, highs = wilson_intervals(successes, n, z)
    return [
        Estimate(value=x / m, n=m, ci_low=float(lo), ci_high=float(hi)) if m else Estimate.undefined(why)
        for x, m, why, lo, hi in zip(successes, n, reasons, lows.tolist(), highs.tolist(), strict=True)
    ]


def _binary_cells(t: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(..., 2, 2) tables [[tp, fn], [fp, tn]] (rows human yes/no, columns scorer yes/no)."""
    sel = np.stack([mask, ~mask]).astype(np.int64)
    return np.einsum("ih,...hs,js->...ij", sel, t, sel)


# --------------------------------------------------------------------------- agreement


@dataclass(frozen=True)
class ScorerAgreement:
    """How well a scorer reproduces the human final labels on `n` compared items.

    - `accuracy` = trace / n with a Wilson interval.
    - `cohen_kappa` = (p_o - p_e) / (1 - p_e) (Cohen 1960), with p_o = trace / n and
      p_e = sum_k r_k c_k / n^2 (r, c the human and scorer margins); its interval is the percentile
      bootstrap over items.
    - On the binary refusal target, with the counts `true_positives` (human and scorer refusal),
      `false_positives` (scorer only), `false_negatives` (human only), `true_negatives`:
      `precision` = tp / (tp + fp) and `recall` = tp / (tp + fn), each with a Wilson interval;
      `f1` = 2 tp / (2 tp + fp + fn) with a percentile bootstrap interval from the same resamples.
    """

    n: int
    accuracy: Estimate
    cohen_kappa: Estimate
    precision: Estimate
    recall: Estimate
    f1: Estimate
    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int


def _kappa_statistic(tables: np.ndarray) -> np.ndarray:
    """Cohen's kappa of each (B, K, K) table: 1 - n (n - trace) / (n^2 - sum_k r_k c_k); nan if undefined."""
    n = tables.sum((1, 2)).astype(float)
    agree = np.einsum("bkk->b", tables).astype(float)
    chance = np.einsum("bk,bk->b", tables.sum(2), tables.sum(1)).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        kappa = 1.0 - n * (n - agree) / (n * n - chance)
    return np.where(n * n > chance, kappa, np.nan)


def _f1_statistic(cells: np.ndarray) -> np.ndarray:
    """2 tp / (2 tp + fp + fn) of each (B, 2, 2) table [[tp, fn], [fp, tn]]; nan if undefined."""
    tp = 2.0 * cells[:, 0, 0]
    denom = tp + cells[:, 0, 1] + cells[:, 1, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, tp / denom, np.nan)


def _percentile(values: np.ndarray, alpha: float) -> tuple[float | None, float | None]:
    """Percentile interval of the defined (non-nan) values; (None, None) if none is defined."""
    values = values[~np.isnan(values)]
    if values.size == 0:
        return None, None
    low, high = np.quantile(values, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def _with_interval(estimate: Estimate, values: np.ndarray, alpha: float) -> Estimate:
    low, high = _percentile(values, alpha)
    return Estimate(value=estimate.value, n=estimate.n, ci_low=low, ci_high=high)


def scorer_agreement(
    confusion: npt.ArrayLike,
    *,
    positive: npt.ArrayLike,
    bootstrap: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> ScorerAgreement:
    """Accuracy, Cohen's kappa and refusal precision/recall/F1 of a scorer from a K x K confusion matrix.

    See `ScorerAgreement`. The bootstrap resamples the n items with replacement; a resample is fully
    described by how many items fall in each cell, a multinomial(n, confusion / n) draw, so the
    `bootstrap` resamples are `np.random.default_rng(seed).multinomial(n, p, size=bootstrap)`
    (item bootstrap, exactly, without expanding the items). Resamples where a statistic is
    undefined are left out of its interval; `bootstrap=0` gives no kappa or F1 interval. Wilson
    and percentile intervals have level 1 - `alpha`.
    """
    t = _as_confusions(confusion)
    if t.ndim != 2:
        raise StatsInputError(f"need one K x K confusion matrix, got shape {t.shape}")
    mask = _positive_mask(positive, t.shape[0])
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int | np.integer) or bootstrap < 0:
        raise StatsInputError(f"bootstrap must be a whole number of resamples >= 0, got {bootstrap!r}")
    z = _z(alpha)
    n = int(t.sum())
    cells = _binary_cells(t, mask)
    tp, fn, fp, tn = (int(v) for v in cells.ravel())
    none = "no items compared"
    reasons = [none, "the scorer called no item a refusal", "the humans labelled no item a refusal"]
    accuracy, precision, recall = _proportions(
        [int(np.trace(t)), tp, tp], [n, tp + fp, tp + fn], reasons if n else [none] * 3, z
    )
    kappa = cohen_kappa(t, min_shared=1) if n else Estimate.undefined(none)
    if 2 * tp + fp + fn == 0:
        f1 = Estimate.undefined("neither the humans nor the scorer found a refusal" if n else none, n=n)
    else:
        f1 = Estimate(value=2 * tp / (2 * tp + fp + fn), n=n)
    if bootstrap > 0 and (kappa.is_defined or f1.is_defined):
        draws = np.random.default_rng(seed).multinomial(n, t.ravel() / n, size=bootstrap)
        tables = draws.reshape(bootstrap, *t.shape)
        if kappa.is_defined:
            kappa = _with_interval(kappa, _kappa_statistic(tables), alpha)
        if f1.is_defined:
            f1 = _with_interval(f1, _f1_statistic(_binary_cells(tables, mask)), alpha)
    return ScorerAgreement(n, accuracy, kappa, precision, recall, f1, tp, fp, fn, tn)


# --------------------------------------------------------------------------- errors by group


def scorer_error_counts(
    confusions: npt.ArrayLike,
    *,
    positive: npt.ArrayLike | None = None,
    kind: ErrorKind = "error",
) -> tuple[np.ndarray, np.ndarray]:
    """(errors, totals) per confusion matrix of a (..., K, K) stack, for `error_rate_by_group`.

    - "error": scorer category != human category, out of every compared item (1 - accuracy);
    - "miss": human refusal the scorer did not call a refusal, out of the human refusals
      (false negative rate, 1 - recall); needs `positive`;
    - "false_alarm": scorer refusal on a human non-refusal, out of the human non-refusals
      (false positive rate); needs `positive`.

    `positive` is checked but not used for "error", so one call shape serves every kind.
    """
    t = _as_confusions(confusions)
    mask = None if positive is None else _positive_mask(positive, t.shape[-1])
    if kind == "error":
        totals = t.sum((-2, -1))
        return totals - np.einsum("...kk->...", t), totals
    if kind not in ("miss", "false_alarm"):
        raise StatsInputError(f"unknown error kind {kind!r}: use 'error', 'miss' or 'false_alarm'")
    if mask is None:
        raise StatsInputError(f"kind={kind!r} needs the positive (refusal) categories")
    cells = _binary_cells(t, mask)
    if kind == "miss":
        return cells[..., 0, 1], cells[..., 0, :].sum(-1)
    return cells[..., 1, 0], cells[..., 1, :].sum(-1)


@dataclass(frozen=True)
class GroupErrorTest:
    """A scorer's error rate per group and a test of whether it differs between groups.

    `rates` are `group_rates` of the errors (95% Wilson intervals, gap to the pooled rate);
    `overall` pools every group; `test` is `independence_test` of the groups x (error, correct)
    table: Pearson chi-square, Fisher's exact test for two groups when an expected count is below
    `min_expected`, Fisher-Freeman-Halton (Monte Carlo) for more groups; undefined with a reason
    when fewer than two groups have items or no group has an error (or every item is one).
    """

    rates: tuple[GroupRate, ...]
    overall: Estimate
    test: IndependenceTest


def error_rate_by_group(
    errors: npt.ArrayLike,
    totals: npt.ArrayLike,
    *,
    min_expected: float = 5.0,
    seed: int = 0,
) -> GroupErrorTest:
    """Error rate of the scorer per group (index in input order) and a test of equal rates.

    `errors[g]` of `totals[g]` items of group g are errors; which errors is the caller's choice
    (see `scorer_error_counts`): all disagreements (1 - accuracy), misses of human refusals (false
    negative rate) or false alarms, each the same call with other counts. `seed` drives the
    Monte Carlo p-value of the exact test for more than two groups.
    """
    x, m = _as_counts(errors, totals)
    if x.ndim != 1:
        raise StatsInputError("error_rate_by_group takes one count per group")
    (overall,) = _proportions([int(x.sum())], [int(m.sum())], ["no items compared"])
    test = independence_test(np.column_stack([x, m - x]), min_expected=min_expected, rng=seed)
    return GroupErrorTest(group_rates(x, m), overall, test)


# --------------------------------------------------------------------------- flags and rates


@dataclass(frozen=True)
class FlagRate:
    """Share of the items humans labelled `category` that a flag scorer flagged, with a Wilson interval."""

    category: int
    flagged: int
    n: int
    rate: Estimate


def flag_rates(flagged: npt.ArrayLike, totals: npt.ArrayLike, *, alpha: float = 0.05) -> tuple[FlagRate, ...]:
    """Per human category c: flagged[c] / totals[c] with its Wilson interval (level 1 - alpha).

    For flag scorers (e.g. "toxic"): `flagged[c]` of the `totals[c]` items with human final
    category c were flagged; e.g. 0 of 412 gives 0.0% (95% CI 0.0-0.9%).
    """
    x, m = _as_counts(flagged, totals)
    if x.ndim != 1:
        raise StatsInputError("flag_rates takes one count per category")
    xs, ms = x.tolist(), m.tolist()
    rates = _proportions(xs, ms, ["no item has this human category"] * len(xs), _z(alpha))
    return tuple(FlagRate(c, *counts) for c, counts in enumerate(zip(xs, ms, rates, strict=True)))


def scorer_rates(confusions: npt.ArrayLike, *, positive: npt.ArrayLike) -> tuple[GroupRate, ...]:
    """The scorer's own refusal rate per group from a (G, K, K) stack, as `group_rates` rows.

    Rate of group g = (items the scorer put in a positive column) / (compared items of g), over the
    same items as the human rates, so the two tables sit side by side. For the scorer's rate over
    every scored output (with or without a human label) call `group_rates` on those counts.
    """
    t = _as_confusions(confusions)
    if t.ndim != 3:
        raise StatsInputError(f"need (n_groups, K, K) confusion matrices, got shape {t.shape}")
    mask = _positive_mask(positive, t.shape[-1])
    return group_rates(t[:, :, mask].sum((1, 2)), t.sum((1, 2)))
