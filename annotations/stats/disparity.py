"""Refusal-rate disparities between groups: intervals, tests, model-stratified comparisons.

Inputs are counts from aggregate queries: `successes[g]` outputs of group g with the outcome (e.g.
a refusal) out of `n[g]`; `(n_models, n_groups)` arrays of the same for stratified analyses.

Conventions shared by the whole `annotations.stats` package live here because this module depends
on no other one in it:

- `StatsInputError` (a `ValueError`) is raised for inputs a statistic cannot take (wrong shape,
  negative counts, unequal numbers of ratings for Fleiss' kappa), never an `assert`.
- A statistic that exists for the input but is undefined for these data (0/0: one category only,
  no shared items, an empty group) is an `Estimate` with `value=None` and a `reason`; it is never
  reported as 0, 1 or a bare nan.
- The low-level interval functions (`wilson_interval`, `wilson_intervals`,
  `newcombe_difference_interval`) are numeric primitives and return `(nan, nan)` when n == 0;
  every dataclass built from them turns that into `None` with a reason.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from itertools import combinations
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats as sps

Z_95 = 1.959964


class StatsInputError(ValueError):
    """Input that a statistic in `annotations.stats` cannot take (shape, sign, design)."""


@dataclass(frozen=True)
class Estimate:
    """A point estimate, or the reason it is undefined, with its sample size and optional interval.

    `value is None` exactly when `reason` says why (e.g. "zero expected disagreement").
    `n` is the number of units the estimate rests on (items, outputs, shared items: see each
    function). `ci_low`/`ci_high` are None when no interval was computed or none is defined.
    """

    value: float | None
    reason: str | None = None
    n: int = 0
    ci_low: float | None = None
    ci_high: float | None = None

    def __post_init__(self) -> None:
        """Keep value and reason exclusive so an undefined result always says why."""
        if (self.value is None) == (self.reason is None):
            raise StatsInputError("an Estimate has either a value or a reason, not both or neither")
        if self.value is not None and math.isnan(self.value):
            raise StatsInputError("nan is not a value: give a reason instead")

    @property
    def is_defined(self) -> bool:
        """Whether the estimate has a value."""
        return self.value is not None

    @classmethod
    def undefined(cls, reason: str, n: int = 0) -> Estimate:
        """An undefined estimate over `n` units, with the reason."""
        return cls(value=None, reason=reason, n=n)


def _finite_or_none(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


# --------------------------------------------------------------------------- intervals


def wilson_intervals(
    successes: npt.ArrayLike, n: npt.ArrayLike, z: float = Z_95
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised Wilson score interval (Wilson 1927; Newcombe 1998 method 3); nan where n == 0.

    With p = x/n: centre = (p + z^2/(2n)) / (1 + z^2/n),
    half-width = z / (1 + z^2/n) * sqrt(p(1-p)/n + z^2/(4n^2)); the bounds are clipped to [0, 1].
    """
    x = np.asarray(successes, dtype=float)
    m = np.asarray(n, dtype=float)
    if np.any(m < 0) or np.any(x < 0) or np.any(x > m):
        raise StatsInputError("need 0 <= successes <= n")
    with np.errstate(invalid="ignore", divide="ignore"):
        p = x / m
        z2 = z * z
        denom = 1.0 + z2 / m
        centre = (p + z2 / (2.0 * m)) / denom
        half = z / denom * np.sqrt(p * (1.0 - p) / m + z2 / (4.0 * m * m))
        low = np.clip(centre - half, 0.0, 1.0)
        high = np.clip(centre + half, 0.0, 1.0)
    low = np.where(m == 0, np.nan, np.where(x == 0, 0.0, low))
    high = np.where(m == 0, np.nan, np.where(x == m, 1.0, high))
    return low, high


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (Wilson 1927); (nan, nan) when n == 0."""
    low, high = wilson_intervals(successes, n, z)
    return float(low), float(high)


def newcombe_difference_interval(x1: int, n1: int, x2: int, n2: int, z: float = Z_95) -> tuple[float, float]:
    """Interval for p1 - p2 from two Wilson intervals (Newcombe 1998, method 10); nan if n == 0.

    delta = p1 - p2; low = delta - sqrt((p1 - l1)^2 + (u2 - p2)^2),
    high = delta + sqrt((u1 - p1)^2 + (p2 - l2)^2) with (l_i, u_i) the Wilson bounds of p_i.
    """
    if n1 == 0 or n2 == 0:
        return math.nan, math.nan
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson_interval(x1, n1, z)
    l2, u2 = wilson_interval(x2, n2, z)
    delta = p1 - p2
    return (
        delta - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
        delta + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2),
    )


def _rate_estimate(x: int, n: int, z: float = Z_95) -> Estimate:
    if n == 0:
        return Estimate.undefined("no observations", n=0)
    low, high = wilson_interval(x, n, z)
    return Estimate(value=x / n, n=n, ci_low=low, ci_high=high)


def _difference_estimate(x1: int, n1: int, x2: int, n2: int, scale: float = 1.0) -> Estimate:
    if n1 == 0 or n2 == 0:
        return Estimate.undefined("a compared group has no observations", n=n1 + n2)
    low, high = newcombe_difference_interval(x1, n1, x2, n2)
    return Estimate(value=scale * (x1 / n1 - x2 / n2), n=n1 + n2, ci_low=scale * low, ci_high=scale * high)


def _as_counts(successes: npt.ArrayLike, n: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(successes)
    m = np.asarray(n)
    if x.shape != m.shape:
        raise StatsInputError(f"successes {x.shape} and n {m.shape} differ in shape")
    if not (np.issubdtype(x.dtype, np.integer) and np.issubdtype(m.dtype, np.integer)):
        x_int, m_int = x.astype(np.int64), m.astype(np.int64)
        if np.any(x_int != x) or np.any(m_int != m):
            raise StatsInputError("counts must be whole numbers")
        x, m = x_int, m_int
    if np.any(m < 0) or np.any(x < 0) or np.any(x > m):
        raise StatsInputError("need 0 <= successes <= n")
    return x.astype(np.int64), m.astype(np.int64)


# --------------------------------------------------------------------------- group rates


@dataclass(frozen=True)
class GroupRate:
    """One group's rate with its Wilson interval and its difference from the overall rate.

    `difference_from_overall` = p_g - p_all, where p_all pools every group (this one included);
    since p_g - p_all = (1 - n_g/N) (p_g - p_rest), its interval is the Newcombe interval of
    p_g - p_rest scaled by (1 - n_g/N).
    """

    group: int
    successes: int
    n: int
    rate: Estimate
    difference_from_overall: Estimate


def group_rates(successes: npt.ArrayLike, n: npt.ArrayLike) -> tuple[GroupRate, ...]:
    """Rate per group (index in the input order) with Wilson intervals and gap to the overall rate."""
    x, m = _as_counts(successes, n)
    if x.ndim != 1:
        raise StatsInputError("group_rates takes one count per group")
    total_x, total_n = int(x.sum()), int(m.sum())
    out = []
    for g, (xg, ng) in enumerate(zip(x.tolist(), m.tolist(), strict=True)):
        rest_n = total_n - ng
        if ng == 0:
            diff = Estimate.undefined("group has no observations")
        elif rest_n == 0:
            diff = Estimate.undefined("no other group has observations", n=ng)
        else:
            diff = _difference_estimate(xg, ng, total_x - xg, rest_n, scale=rest_n / total_n)
        out.append(GroupRate(g, xg, ng, _rate_estimate(xg, ng), diff))
    return tuple(out)


@dataclass(frozen=True)
class RateRatio:
    """Highest over lowest group rate (groups with observations only), with which groups they are."""

    ratio: Estimate
    max_group: int | None
    min_group: int | None


def max_min_rate_ratio(successes: npt.ArrayLike, n: npt.ArrayLike) -> RateRatio:
    """max_g p_g / min_g p_g over groups with n_g > 0; undefined if fewer than 2 or min rate is 0."""
    x, m = _as_counts(successes, n)
    present = np.flatnonzero(m > 0)
    if present.size < 2:
        return RateRatio(Estimate.undefined("fewer than two groups have observations"), None, None)
    rates = x[present] / m[present]
    g_max = int(present[np.argmax(rates)])
    g_min = int(present[np.argmin(rates)])
    n_used = int(m[g_max] + m[g_min])
    if rates.min() == 0:
        reason = "the lowest rate is 0" if rates.max() > 0 else "every rate is 0"
        return RateRatio(Estimate.undefined(reason, n=n_used), g_max, g_min)
    return RateRatio(Estimate(float(rates.max() / rates.min()), n=n_used), g_max, g_min)


# --------------------------------------------------------------------------- tests


@dataclass(frozen=True)
class IndependenceTest:
    """Result of a test of independence on a groups x outcomes table.

    `test` names the test actually used; `p_value` is None (with `reason`) when no test applies.
    `statistic` is Pearson's X^2 (chi-square), the sample odds ratio (Fisher's exact test on a
    2x2 table; may be 0 or inf) or the probability of the observed table (Freeman-Halton).
    `min_expected` is the smallest expected count under independence (after dropping empty
    rows and columns).
    """

    test: str
    statistic: float | None
    dof: int | None
    p_value: float | None
    min_expected: float | None
    n: int
    reason: str | None = None


def _expected(table: np.ndarray) -> np.ndarray:
    return np.outer(table.sum(1), table.sum(0)) / table.sum()


def independence_test(
    table: npt.ArrayLike,
    *,
    min_expected: float = 5.0,
    n_resamples: int = 9999,
    rng: np.random.Generator | int | None = None,
) -> IndependenceTest:
    """Pearson chi-square test of independence, or an exact alternative when counts are small.

    Empty rows/columns are dropped first. If every expected count is >= `min_expected`:
    Pearson's chi-square without continuity correction. Otherwise: Fisher's exact test for a
    2x2 table, and for larger tables the Fisher-Freeman-Halton test (statistic = probability of
    the table under fixed margins) with a Monte Carlo p-value over `n_resamples` tables drawn
    with `rng` (scipy.stats.fisher_exact with MonteCarloMethod; p = (b + 1) / (R + 1)).
    """
    t = np.asarray(table)
    if t.ndim != 2 or np.any(t < 0):
        raise StatsInputError("need a 2-d table of non-negative counts")
    t = t[t.sum(1) > 0][:, t.sum(0) > 0].astype(np.int64)
    total = int(t.sum())
    if t.shape[0] < 2 or t.shape[1] < 2:
        return IndependenceTest(
            "none",
            None,
            None,
            None,
            None,
            total,
            reason="fewer than two non-empty groups or outcomes: nothing to compare",
        )
    exp = _expected(t)
    smallest = float(exp.min())
    dof = (t.shape[0] - 1) * (t.shape[1] - 1)
    if smallest >= min_expected:
        chi2, p, _, _ = sps.chi2_contingency(t, correction=False)
        return IndependenceTest("chi-square", float(chi2), dof, float(p), smallest, total)
    if t.shape == (2, 2):
        res = sps.fisher_exact(t)
        return IndependenceTest(
            "fisher-exact", float(res.statistic), None, float(res.pvalue), smallest, total
        )
    method = sps.MonteCarloMethod(n_resamples=n_resamples, rng=np.random.default_rng(rng))
    res = sps.fisher_exact(t, method=method)
    return IndependenceTest(
        f"fisher-freeman-halton-monte-carlo-{n_resamples}",
        float(res.statistic),
        None,
        float(res.pvalue),
        smallest,
        total,
    )


def holm_adjust(p_values: npt.ArrayLike) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values; nan entries stay nan and are not counted in m.

    With the m defined p-values sorted p_(1) <= ... <= p_(m):
    adj_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)).
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if np.any((p[ok] < 0) | (p[ok] > 1)):
        raise StatsInputError("p-values must lie in [0, 1]")
    defined = p[ok]
    m = defined.size
    if m == 0:
        return out
    order = np.argsort(defined, kind="stable")
    stepped = np.minimum(1.0, (m - np.arange(m)) * defined[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(stepped)
    out[ok] = adjusted
    return out


@dataclass(frozen=True)
class PairComparison:
    """Two groups compared: difference in rates (Newcombe interval) and the test used.

    `p_holm` is Holm-adjusted over the defined comparisons of one call; `reject` at `alpha`.
    """

    group_a: int
    group_b: int
    difference: Estimate
    test: str
    p_value: float | None
    p_holm: float | None
    reject: bool | None
    reason: str | None = None


def _two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (x1 / n1 - x2 / n2) / se
    return z, float(2 * sps.norm.sf(abs(z)))


def pairwise_comparisons(
    successes: npt.ArrayLike,
    n: npt.ArrayLike,
    *,
    alpha: float = 0.05,
    min_expected: float = 5.0,
) -> tuple[PairComparison, ...]:
    """Every pair of groups: pooled two-proportion z test, or Fisher's exact test when any
    expected count of the 2x2 table is below `min_expected`; Holm correction across pairs.
    """
    x, m = _as_counts(successes, n)
    pairs = list(combinations(range(x.size), 2))
    raw: list[tuple[str, float | None, str | None]] = []
    for a, b in pairs:
        if m[a] == 0 or m[b] == 0:
            raw.append(("none", None, "a compared group has no observations"))
            continue
        t = np.array([[x[a], m[a] - x[a]], [x[b], m[b] - x[b]]])
        if _expected(t).min() < min_expected:
            raw.append(("fisher-exact", float(sps.fisher_exact(t).pvalue), None))
        else:
            raw.append(("two-proportion-z", _two_proportion_z(x[a], m[a], x[b], m[b])[1], None))
    adjusted = holm_adjust([np.nan if p is None else p for _, p, _ in raw])
    out = []
    for (a, b), (test, p, reason), adj in zip(pairs, raw, adjusted, strict=True):
        diff = _difference_estimate(int(x[a]), int(m[a]), int(x[b]), int(m[b]))
        p_holm = None if p is None else float(adj)
        reject = None if p_holm is None else p_holm <= alpha
        out.append(PairComparison(a, b, diff, test, p, p_holm, reject, reason))
    return tuple(out)


# --------------------------------------------------------------------------- stratified by model


@dataclass(frozen=True)
class StratifiedResult:
    """Cochran-Mantel-Haenszel analysis of 2x2xK tables (one 2x2 table per model).

    `odds_ratio` is the Mantel-Haenszel pooled odds ratio with its (Robins-Breslow-Greenland)
    interval; `statistic`/`p_value` the CMH test of a common odds ratio of 1; `breslow_day_p` tests
    that the odds ratio is the same in every stratum. Strata with an empty row or column carry no
    information and are dropped (`n_strata_dropped`).
    """

    odds_ratio: Estimate
    statistic: float | None
    p_value: float | None
    breslow_day_p: float | None
    n_strata_used: int
    n_strata_dropped: int
    reason: str | None = None


def cmh_test(tables: npt.ArrayLike, *, correction: bool = False) -> StratifiedResult:
    """CMH test and pooled odds ratio over K 2x2 tables shaped (K, 2, 2) (Mantel-Haenszel 1959).

    Statistic: (|sum_k (a_k - E[a_k])| - c)^2 / sum_k Var(a_k), with c = 0.5 if `correction`;
    pooled OR = sum_k (a_k d_k / n_k) / sum_k (b_k c_k / n_k). Uses statsmodels StratifiedTable.
    """
    from statsmodels.stats.contingency_tables import StratifiedTable

    t = np.asarray(tables)
    if t.ndim != 3 or t.shape[1:] != (2, 2) or np.any(t < 0):
        raise StatsInputError("need non-negative tables shaped (K, 2, 2)")
    t = t.astype(np.int64)
    informative = (t.sum(2).min(1) > 0) & (t.sum(1).min(1) > 0)
    used = t[informative]
    n_total = int(used.sum())
    dropped = int((~informative).sum())
    if used.shape[0] == 0:
        reason = "no stratum has both rows and both outcomes observed"
        return StratifiedResult(Estimate.undefined(reason), None, None, None, 0, dropped, reason)
    st = StratifiedTable(np.moveaxis(used, 0, -1).astype(float))
    test = st.test_null_odds(correction=correction)
    n_k = used.sum((1, 2))
    num = float((used[:, 0, 0] * used[:, 1, 1] / n_k).sum())
    den = float((used[:, 0, 1] * used[:, 1, 0] / n_k).sum())
    if num == 0 or den == 0:
        odds = Estimate.undefined(
            "pooled odds ratio is 0 or infinite (a zero cell in every stratum)", n=n_total
        )
    else:
        low, high = st.oddsratio_pooled_confint()
        odds = Estimate(num / den, n=n_total, ci_low=float(low), ci_high=float(high))
    breslow = None
    if used.shape[0] >= 2 and num > 0 and den > 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            bd = st.test_equal_odds()
        breslow = _finite_or_none(float(bd.pvalue))
    return StratifiedResult(
        odds, float(test.statistic), float(test.pvalue), breslow, int(used.shape[0]), dropped
    )


def group_vs_rest_tables(successes: npt.ArrayLike, n: npt.ArrayLike, group: int) -> np.ndarray:
    """(K, 2, 2) tables from (models x groups) counts: rows group / rest, columns outcome yes / no."""
    x, m = _as_counts(successes, n)
    if x.ndim != 2:
        raise StatsInputError("need (n_models, n_groups) arrays")
    if not 0 <= group < x.shape[1]:
        raise StatsInputError(f"group {group} out of range")
    xg, ng = x[:, group], m[:, group]
    xr, nr = x.sum(1) - xg, m.sum(1) - ng
    return np.stack([np.stack([xg, ng - xg], 1), np.stack([xr, nr - xr], 1)], 1)


def cmh_group_vs_rest(
    successes: npt.ArrayLike, n: npt.ArrayLike, group: int, *, correction: bool = False
) -> StratifiedResult:
    """CMH analysis of one group against all others, stratified by model (rows of the inputs)."""
    return cmh_test(group_vs_rest_tables(successes, n, group), correction=correction)


@dataclass(frozen=True)
class LogisticGroupTest:
    """Likelihood-ratio test for group in the binomial GLM outcome ~ C(group) + C(model).

    `odds_ratios[g]` is exp(beta_g) against group 0 (the first present group), None for group 0
    and absent groups; `note` flags quasi-separation (a group with 0% or 100% in every model),
    where the fitted odds ratio runs off to 0 or infinity but the LR test remains usable.
    """

    statistic: float | None
    dof: int | None
    p_value: float | None
    odds_ratios: tuple[float | None, ...]
    n: int
    reason: str | None = None
    note: str | None = None


def logistic_group_test(successes: npt.ArrayLike, n: npt.ArrayLike) -> LogisticGroupTest:
    """LR test (G^2 = 2 (llf_full - llf_reduced), chi-square with G-1 dof) of group, adjusted for model.

    Fits binomial GLMs (statsmodels) on the (models x groups) cell counts: full = intercept +
    group dummies + model dummies, reduced = intercept + model dummies. Empty cells are dropped.
    """
    import statsmodels.api as sm

    x, m = _as_counts(successes, n)
    if x.ndim != 2:
        raise StatsInputError("need (n_models, n_groups) arrays")
    n_groups = x.shape[1]
    model_idx, group_idx = np.nonzero(m > 0)
    total = int(m.sum())
    groups = np.unique(group_idx)
    models = np.unique(model_idx)
    none_or = tuple([None] * n_groups)
    if groups.size < 2:
        return LogisticGroupTest(
            None, None, None, none_or, total, reason="fewer than two groups have observations"
        )
    y = x[model_idx, group_idx]
    k = m[model_idx, group_idx]
    if y.sum() == 0 or y.sum() == k.sum():
        return LogisticGroupTest(
            None,
            None,
            None,
            none_or,
            total,
            reason="the outcome never varies: every output has the same outcome",
        )
    g_dummies = (group_idx[:, None] == groups[None, 1:]).astype(float)
    m_dummies = (model_idx[:, None] == models[None, 1:]).astype(float)
    intercept = np.ones((y.size, 1))
    endog = np.column_stack([y, k - y]).astype(float)
    full_x = np.hstack([intercept, g_dummies, m_dummies])
    red_x = np.hstack([intercept, m_dummies])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = sm.GLM(endog, full_x, family=sm.families.Binomial()).fit()
        reduced = sm.GLM(endog, red_x, family=sm.families.Binomial()).fit()
    stat = max(0.0, 2.0 * float(full.llf - reduced.llf))
    dof = int(groups.size - 1)
    ors: list[float | None] = [None] * n_groups
    for j, g in enumerate(groups[1:].tolist()):
        ors[g] = float(np.exp(full.params[1 + j]))
    g_x = np.bincount(group_idx, weights=y, minlength=n_groups)
    g_n = np.bincount(group_idx, weights=k, minlength=n_groups)
    separated = [int(g) for g in groups if g_x[g] in (0, g_n[g])]
    note = None
    if separated:
        note = f"groups {separated} have 0% or 100% outcome: their odds ratios are not finite"
        for g in separated:
            ors[g] = None
    return LogisticGroupTest(stat, dof, float(sps.chi2.sf(stat, dof)), tuple(ors), total, note=note)


# --------------------------------------------------------------------------- final labels

NO_LABEL = -1
LabelRule = Literal["unanimous", "majority", "plurality"]


def resolve_final_labels(
    counts: npt.ArrayLike,
    adjudicated: npt.ArrayLike | None = None,
    *,
    rule: LabelRule = "majority",
) -> np.ndarray:
    """Final category per item from (items x categories) label counts; -1 = needs adjudication.

    The vote behind a campaign's final-label rule (annotations/labelling/final_label.py, which applies
    it once per item as labels arrive) and behind the agreement tables' consensus. An adjudicated
    code (>= 0; -1 = none) wins. Otherwise: "unanimous" takes a category only when every label
    agrees; "majority" when one category has more than half the labels; "plurality" when one
    category has strictly more labels than any other. Ties and unlabelled items give -1.
    """
    c = np.asarray(counts)
    if c.ndim != 2 or np.any(c < 0):
        raise StatsInputError("need a non-negative (n_items, n_categories) count matrix")
    if rule not in ("unanimous", "majority", "plurality"):
        raise StatsInputError(f"unknown rule {rule!r}")
    total = c.sum(1)
    top = c.argmax(1) if c.shape[1] else np.zeros(c.shape[0], dtype=np.int64)
    top_count = c.max(1, initial=0)
    if rule == "unanimous":
        ok = (top_count == total) & (total > 0)
    elif rule == "majority":
        ok = 2 * top_count > total
    else:
        ok = (top_count > 0) & ((c == top_count[:, None]).sum(1) == 1)
    labels = np.where(ok, top, NO_LABEL).astype(np.int64)
    if adjudicated is not None:
        adj = np.asarray(adjudicated, dtype=np.int64)
        if adj.shape != labels.shape:
            raise StatsInputError("adjudicated must have one entry per item")
        labels = np.where(adj >= 0, adj, labels)
    return labels


def resolve_final_label(
    counts: npt.ArrayLike,
    adjudicated: int | None = None,
    *,
    rule: LabelRule = "majority",
) -> int | None:
    """Final category of one item (see `resolve_final_labels`); None means "needs adjudication"."""
    label = int(
        resolve_final_labels(
            np.asarray(counts)[None, :],
            None if adjudicated is None else [adjudicated],
            rule=rule,
        )[0]
    )
    return None if label == NO_LABEL else label
