"""Counterfactual consistency: does the final category change when only the name changes?

Prompts built from one template differ only in the member (name) inserted, so within a template a
difference between groups is attributable to the name. Input: `counts` shaped
(n_templates, n_groups, n_categories), counts[t, g, k] = outputs of template t for names of group g
whose final category is k (one `GROUP BY template, group, final_category`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from annotations.stats.disparity import Estimate, StatsInputError


def _as_counts3(counts: npt.ArrayLike) -> np.ndarray:
    c = np.asarray(counts)
    if c.ndim != 3:
        raise StatsInputError(f"need (n_templates, n_groups, n_categories) counts, got {c.shape}")
    if c.size and (not np.issubdtype(c.dtype, np.integer) or c.min() < 0):
        raise StatsInputError("counts must be non-negative integers")
    return c.astype(np.int64, copy=False)


@dataclass(frozen=True)
class ChangeRates:
    """How often the category differs between two outputs of one template.

    - `between[t, a, b]` = P(a random group-a output and a random group-b output of template t
      get different categories) = 1 - sum_k p_tak p_tbk, with p_tgk = counts[t, g, k] / n[t, g];
      nan where either group has no output for t (on the diagonal a == b, draws are with
      replacement; see `within` for two distinct outputs).
    - `within[t, g]` = the same for two distinct outputs of group g (sampling noise, other names
      of the group) = 1 - sum_k n_tgk (n_tgk - 1) / (n_tg (n_tg - 1)); nan when n_tg < 2.
    - `excess[t, a, b]` = between - (within_a + within_b) / 2: the change beyond what two outputs
      of the same groups show anyway.
    - `mean_between[a, b]`: mean of `between` over the templates where it is defined, with
      `n_templates[a, b]` of them.
    """

    between: np.ndarray
    within: np.ndarray
    excess: np.ndarray
    mean_between: np.ndarray
    n_templates: np.ndarray


def change_rates(counts: npt.ArrayLike) -> ChangeRates:
    """Per template and pair of groups, the probability the category changes with the name."""
    c = _as_counts3(counts)
    n = c.sum(2)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = c / n[:, :, None]
        between = 1.0 - np.einsum("tak,tbk->tab", p, p)
        same_within = (c * (c - 1)).sum(2) / (n * (n - 1))
    within = np.where(n >= 2, 1.0 - same_within, np.nan)
    present = n > 0
    defined = present[:, :, None] & present[:, None, :]
    between = np.where(defined, between, np.nan)
    excess = between - (within[:, :, None] + within[:, None, :]) / 2.0
    n_templates = defined.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_between = np.where(
            n_templates > 0, np.nansum(between, axis=0) / np.maximum(n_templates, 1), np.nan
        )
    return ChangeRates(between, within, excess, mean_between, n_templates)


@dataclass(frozen=True)
class TemplateGap:
    """A template's largest gap in outcome rate (e.g. refusal) between two of its groups."""

    template: int
    gap: Estimate
    max_group: int | None
    min_group: int | None
    max_rate: float | None
    min_rate: float | None


def template_gap_ranking(
    successes: npt.ArrayLike, n: npt.ArrayLike, *, min_n: int = 1
) -> tuple[TemplateGap, ...]:
    """Templates ranked by max_g p_tg - min_g p_tg over groups with n_tg >= `min_n`, largest first.

    Inputs are (n_templates, n_groups) counts. Templates with fewer than two such groups get an
    undefined gap and are ranked last (in template order).
    """
    x = np.asarray(successes)
    m = np.asarray(n)
    if x.ndim != 2 or x.shape != m.shape:
        raise StatsInputError("need (n_templates, n_groups) successes and n of the same shape")
    if np.any(m < 0) or np.any(x < 0) or np.any(x > m):
        raise StatsInputError("need 0 <= successes <= n")
    ok = m >= max(min_n, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = np.where(ok, x / np.where(m > 0, m, 1), np.nan)
    n_ok = ok.sum(1)
    hi = np.where(ok, rates, -np.inf)
    lo = np.where(ok, rates, np.inf)
    g_max, g_min = hi.argmax(1), lo.argmin(1)
    rows = np.arange(x.shape[0])
    gaps = np.where(n_ok >= 2, hi[rows, g_max] - lo[rows, g_min], np.nan)
    order = np.lexsort((rows, np.where(np.isnan(gaps), np.inf, -gaps)))
    out = []
    for t in order.tolist():
        if n_ok[t] < 2:
            gap = Estimate.undefined(f"fewer than two groups with at least {max(min_n, 1)} outputs")
            out.append(TemplateGap(t, gap, None, None, None, None))
            continue
        a, b = int(g_max[t]), int(g_min[t])
        gap = Estimate(float(gaps[t]), n=int(m[t, a] + m[t, b]))
        out.append(TemplateGap(t, gap, a, b, float(rates[t, a]), float(rates[t, b])))
    return tuple(out)
