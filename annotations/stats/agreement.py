"""Agreement between annotators on nominal categories.

Two input shapes, both cheap to build with aggregate queries:

- `counts`: (n_items, n_categories) integers, counts[i, c] = number of annotators who gave
  category c to item i (one `GROUP BY item, category`). Missing ratings are simply not counted,
  so items may have different numbers of ratings.
- `codes`: (n_items, n_raters) integers, codes[i, r] = category code (0..K-1) that rater r gave
  item i, or -1 when r did not rate i; needed for per-rater measures.

Undefined values are `Estimate(value=None, reason=...)`, never 0, 1 or a bare nan.
Bootstrap intervals resample items with replacement. Every statistic here is a function of sums
of per-item terms that depend on the item only through its row of counts, so a resample is fully
described by how many times each distinct count row ("pattern") is drawn: a multinomial draw over
the P patterns. B resamples are then one (B x P) @ (P x F) matrix product instead of B passes over
the items; P is small in practice (at most C(R + K, K) rows for R raters and K categories).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import numpy.typing as npt
from scipy import sparse

from annotations.stats.disparity import (
    Estimate,
    LabelRule,
    StatsInputError,
    resolve_final_labels,
    wilson_interval,
)

DEFAULT_RESAMPLES = 1000
_MAX_BOOT_CELLS = 20_000_000  # bound on (resamples in one batch) x (patterns), ~160 MB of int64

# --------------------------------------------------------------------------- input helpers


def _as_counts(counts: npt.ArrayLike) -> np.ndarray:
    c = np.asarray(counts)
    if c.ndim != 2:
        raise StatsInputError(f"need an (n_items, n_categories) matrix, got shape {c.shape}")
    if c.size and not np.issubdtype(c.dtype, np.integer):
        ci = c.astype(np.int64)
        if np.any(ci != c):
            raise StatsInputError("counts must be whole numbers")
        c = ci
    if c.size and c.min() < 0:
        raise StatsInputError("counts must be non-negative")
    return c.astype(np.int64, copy=False)


def _as_codes(codes: npt.ArrayLike, n_categories: int | None) -> tuple[np.ndarray, int]:
    x = np.asarray(codes)
    if x.ndim != 2:
        raise StatsInputError(f"need an (n_items, n_raters) code matrix, got shape {x.shape}")
    if x.size and not np.issubdtype(x.dtype, np.integer):
        raise StatsInputError("codes must be integers (category index, -1 = missing)")
    x = x.astype(np.int64, copy=False)
    top = int(x.max()) if x.size else -1
    k = top + 1 if n_categories is None else n_categories
    if x.size and (x.min() < -1 or top >= max(k, 0)):
        raise StatsInputError(f"codes must lie in -1..{k - 1}")
    return x, k


def count_matrix(codes: npt.ArrayLike, n_categories: int | None = None) -> np.ndarray:
    """(n_items, n_categories) count matrix from an (n_items, n_raters) code matrix (-1 = missing)."""
    x, k = _as_codes(codes, n_categories)
    n_items = x.shape[0]
    # one bincount over item * (k + 1) + code, with missing ratings in an extra last bin
    flat = np.where(x >= 0, x, k) + (np.arange(n_items, dtype=np.int64) * (k + 1))[:, None]
    return np.bincount(flat.ravel(), minlength=n_items * (k + 1)).reshape(n_items, k + 1)[:, :k]


def coincidence_matrix(counts: npt.ArrayLike) -> np.ndarray:
    """Krippendorff's coincidence matrix o_ck = sum_u (n_uc n_uk - [c = k] n_uc) / (m_u - 1).

    Sums over pairable items (m_u = sum_c n_uc >= 2); its total is the number of pairable values.
    """
    c = _as_counts(counts)
    m = c.sum(1)
    keep = m >= 2
    c, m = c[keep].astype(float), m[keep].astype(float)
    weighted = c / (m - 1)[:, None]
    return weighted.T @ c - np.diag(weighted.sum(0))


def _rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _patterns(counts: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of a count matrix and how often each occurs (each row counting `weights` times)."""
    if counts.shape[0] == 0:
        return counts, np.zeros(0, dtype=np.int64)
    base = int(counts.max()) + 1
    k = counts.shape[1]
    if base**k < 2**62:
        radix = base ** np.arange(k, dtype=np.int64)
        keys = counts @ radix
        if base**k <= 4 * counts.shape[0] + 1024:
            freq_all = np.bincount(keys, weights=weights, minlength=base**k)
            uniq_keys = np.flatnonzero(freq_all)
            freq = freq_all[uniq_keys]
        else:
            uniq_keys, inverse = np.unique(keys, return_inverse=True)
            freq = np.bincount(inverse.reshape(-1), weights=weights, minlength=uniq_keys.size)
        rows = (uniq_keys[:, None] // radix[None, :]) % base
    else:
        rows, inverse = np.unique(counts, axis=0, return_inverse=True)
        freq = np.bincount(inverse.reshape(-1), weights=weights, minlength=rows.shape[0])
    freq = np.rint(freq).astype(np.int64)
    return rows[freq > 0], freq[freq > 0]


def _bootstrap_interval(
    rows: np.ndarray,
    freq: np.ndarray,
    features: Callable[[np.ndarray], np.ndarray],
    statistic: Callable[[np.ndarray], np.ndarray],
    *,
    n_resamples: int,
    confidence: float,
    rng: np.random.Generator | int | None,
) -> tuple[float | None, float | None]:
    """Percentile interval of `statistic(sum of per-item features)` over item resamples.

    Resampling N items with replacement draws each pattern p a multinomial(N, f_p / N) number of
    times (jointly); the resampled feature sums are W @ F with W the (B x P) draw matrix. Resamples
    where the statistic is undefined (nan) are left out; None if every one is undefined.
    """
    if not 0.0 < confidence < 1.0:
        raise StatsInputError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    if n_resamples <= 0 or freq.size == 0:
        return None, None
    gen = _rng(rng)
    n_items = int(freq.sum())
    feats = features(rows)
    pvals = freq / n_items
    batch = max(1, min(n_resamples, _MAX_BOOT_CELLS // max(1, freq.size)))
    values = []
    for start in range(0, n_resamples, batch):
        size = min(batch, n_resamples - start)
        draws = gen.multinomial(n_items, pvals, size=size)
        values.append(statistic(draws @ feats))
    vals = np.concatenate(values)
    vals = vals[~np.isnan(vals)]
    if vals.size == 0:
        return None, None
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(vals, [tail, 1.0 - tail])
    return float(low), float(high)


# --------------------------------------------------------------------------- Krippendorff's alpha


def _alpha_features(rows: np.ndarray) -> np.ndarray:
    m = rows.sum(1).astype(float)
    agree = (rows * (rows - 1)).sum(1) / (m - 1)
    return np.column_stack([m, agree, rows.astype(float)])


def _alpha_statistic(sums: np.ndarray) -> np.ndarray:
    n, agree, n_c = sums[:, 0], sums[:, 1], sums[:, 2:]
    expected = n * n - (n_c * n_c).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = 1.0 - (n - 1.0) * (n - agree) / expected
    return np.where(expected > 0, alpha, np.nan)


def krippendorff_alpha(
    counts: npt.ArrayLike,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = 0.95,
    rng: np.random.Generator | int | None = None,
) -> Estimate:
    """Krippendorff's alpha for nominal data from an item x category count matrix.

    Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": with o_ck the coincidence
    matrix over pairable items (>= 2 ratings; others are dropped), n_c = sum_k o_ck and
    n = sum_c n_c, alpha = 1 - (n - 1) (n - sum_c o_cc) / (n^2 - sum_c n_c^2).
    `n` of the result is the number of pairable items; the interval is a percentile bootstrap over
    those items (`n_resamples` = 0 for none). Undefined when no item is pairable or when all
    pairable values fall in one category (zero expected disagreement).
    """
    c = _as_counts(counts)
    m = np.einsum("ij->i", c)
    keep = m >= 2
    n_items = int(keep.sum())
    if n_items == 0:
        return Estimate.undefined("no item has two or more ratings", n=0)
    n_c = np.einsum("ij->j", c) - c[~keep].sum(0)
    n = int(n_c.sum())
    expected = n * n - int((n_c * n_c).sum())
    if expected == 0:
        return Estimate.undefined(
            "all pairable ratings fall in one category: zero expected disagreement", n=n_items
        )
    # sum_u sum_c n_uc (n_uc - 1) / (m_u - 1), summed exactly in integers per value of m_u
    same = np.einsum("ij,ij->i", c, c) - m
    same_by_m = np.bincount(m[keep], weights=same[keep])
    sizes = np.flatnonzero(same_by_m)
    agree = float((same_by_m[sizes] / (sizes - 1)).sum()) if sizes.size else 0.0
    value = 1.0 - (n - 1) * (n - agree) / expected
    low, high = (None, None)
    if n_resamples > 0:
        rows, freq = _patterns(c if keep.all() else c[keep])
        low, high = _bootstrap_interval(
            rows,
            freq,
            _alpha_features,
            _alpha_statistic,
            n_resamples=n_resamples,
            confidence=confidence,
            rng=rng,
        )
    return Estimate(value=value, n=n_items, ci_low=low, ci_high=high)


def krippendorff_alpha_codes(
    codes: npt.ArrayLike,
    n_categories: int | None = None,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = 0.95,
    rng: np.random.Generator | int | None = None,
) -> Estimate:
    """Krippendorff's nominal alpha from an item x rater code matrix (-1 = missing)."""
    return krippendorff_alpha(
        count_matrix(codes, n_categories), n_resamples=n_resamples, confidence=confidence, rng=rng
    )


# --------------------------------------------------------------------------- Fleiss' kappa


def _equal_ratings(c: np.ndarray) -> int:
    m = c.sum(1)
    if c.shape[0] == 0:
        raise StatsInputError("Fleiss' kappa needs at least one item")
    if np.any(m != m[0]):
        found = np.unique(m)
        raise StatsInputError(
            "Fleiss' kappa needs the same number of ratings on every item; found "
            f"{found[:10].tolist()}: use krippendorff_alpha for missing ratings"
        )
    if m[0] < 2:
        raise StatsInputError("Fleiss' kappa needs at least two ratings per item")
    return int(m[0])


def _fleiss_statistic(n_raters: int) -> Callable[[np.ndarray], np.ndarray]:
    def statistic(sums: np.ndarray) -> np.ndarray:
        items, p_i, col = sums[:, 0], sums[:, 1], sums[:, 2:]
        p_bar = p_i / items
        p_j = col / (items * n_raters)[:, None]
        p_e = (p_j * p_j).sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            kappa = (p_bar - p_e) / (1.0 - p_e)
        return np.where((col > 0).sum(1) > 1, kappa, np.nan)

    return statistic


def _fleiss_features(n_raters: int) -> Callable[[np.ndarray], np.ndarray]:
    def features(rows: np.ndarray) -> np.ndarray:
        p_i = ((rows * rows).sum(1) - n_raters) / (n_raters * (n_raters - 1))
        return np.column_stack([np.ones(rows.shape[0]), p_i, rows.astype(float)])

    return features


def fleiss_kappa(
    counts: npt.ArrayLike,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = 0.95,
    rng: np.random.Generator | int | None = None,
) -> Estimate:
    """Fleiss' kappa (Fleiss 1971) from an item x category count matrix with equal row sums.

    With n ratings per item and N items: P_i = (sum_j n_ij^2 - n) / (n (n - 1)),
    P_bar = mean_i P_i, p_j = sum_i n_ij / (N n), P_e = sum_j p_j^2,
    kappa = (P_bar - P_e) / (1 - P_e). Raises StatsInputError if items have different numbers of
    ratings (use `krippendorff_alpha`); undefined when one category holds every rating.
    """
    c = _as_counts(counts)
    n_raters = _equal_ratings(c)
    col = c.sum(0)
    if (col > 0).sum() < 2:
        return Estimate.undefined(
            "every rating falls in one category: zero expected disagreement", n=c.shape[0]
        )
    sums = np.concatenate([[c.shape[0]], [_fleiss_features(n_raters)(c)[:, 1].sum()], col])
    value = float(_fleiss_statistic(n_raters)(sums[None, :].astype(float))[0])
    low, high = (None, None)
    if n_resamples > 0:
        rows, freq = _patterns(c)
        low, high = _bootstrap_interval(
            rows,
            freq,
            _fleiss_features(n_raters),
            _fleiss_statistic(n_raters),
            n_resamples=n_resamples,
            confidence=confidence,
            rng=rng,
        )
    return Estimate(value=value, n=int(c.shape[0]), ci_low=low, ci_high=high)


# --------------------------------------------------------------------------- percent agreement


def _agreement_features(rows: np.ndarray) -> np.ndarray:
    m = rows.sum(1)
    p_i = (rows * (rows - 1)).sum(1) / (m * (m - 1))
    return np.column_stack([np.ones(rows.shape[0]), p_i])


def _agreement_statistic(sums: np.ndarray) -> np.ndarray:
    return sums[:, 1] / sums[:, 0]


def percent_agreement(
    counts: npt.ArrayLike,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = 0.95,
    rng: np.random.Generator | int | None = None,
) -> Estimate:
    """Raw pairwise agreement: mean over items with >= 2 ratings of the share of agreeing pairs.

    P_i = sum_c n_ic (n_ic - 1) / (m_i (m_i - 1)); result = mean_i P_i (Fleiss' P_bar when every
    item has the same number of ratings). Bootstrap percentile interval over items.
    """
    c = _as_counts(counts)
    c = c[c.sum(1) >= 2]
    if c.shape[0] == 0:
        return Estimate.undefined("no item has two or more ratings", n=0)
    value = float(_agreement_features(c)[:, 1].mean())
    low, high = (None, None)
    if n_resamples > 0:
        rows, freq = _patterns(c)
        low, high = _bootstrap_interval(
            rows,
            freq,
            _agreement_features,
            _agreement_statistic,
            n_resamples=n_resamples,
            confidence=confidence,
            rng=rng,
        )
    return Estimate(value=value, n=int(c.shape[0]), ci_low=low, ci_high=high)


# --------------------------------------------------------------------------- per category


@dataclass(frozen=True)
class CategoryAgreement:
    """Agreement on one category.

    - `specific_agreement` = o_cc / n_c (coincidence matrix): of the pairable values in category
      c, the share whose pair partners also chose c; for two raters 2a / (2a + b + c).
    - `kappa`: Fleiss' (1971) per-category kappa 1 - sum_i n_ic (n - n_ic) / (N n (n-1) p_c q_c);
      undefined (with reason) unless every item has the same number of ratings.
    - `alpha`: Krippendorff's alpha on the ratings collapsed to "c" vs "not c"; allows missing
      ratings and equals `kappa` + (1 - kappa) / (N n) when ratings are complete.
    """

    category: int
    n_ratings: int
    specific_agreement: Estimate
    kappa: Estimate
    alpha: Estimate


def category_agreement(
    counts: npt.ArrayLike,
    *,
    n_resamples: int = 0,
    confidence: float = 0.95,
    rng: np.random.Generator | int | None = None,
) -> tuple[CategoryAgreement, ...]:
    """Per-category agreement (see `CategoryAgreement`); bootstrap intervals for alpha if asked."""
    c = _as_counts(counts)
    c = c[c.sum(1) >= 2]
    m = c.sum(1)
    n_items = int(c.shape[0])
    equal = n_items > 0 and bool(np.all(m == m[0]))
    coinc = coincidence_matrix(c) if n_items else np.zeros((c.shape[1], c.shape[1]))
    gen = _rng(rng)
    out = []
    for k in range(c.shape[1]):
        n_k = int(c[:, k].sum())
        if n_k == 0:
            specific = Estimate.undefined("category not used on any pairable item", n=n_items)
        else:
            specific = Estimate(float(coinc[k, k] / coinc[k].sum()), n=n_items)
        if not equal:
            kappa = Estimate.undefined(
                "items have unequal numbers of ratings (or none is pairable): see alpha",
                n=n_items,
            )
        else:
            r = int(m[0])
            p = n_k / (n_items * r)
            if p in (0.0, 1.0):
                kappa = Estimate.undefined(
                    "category never or always used: zero expected disagreement", n=n_items
                )
            else:
                disagree = float((c[:, k] * (r - c[:, k])).sum())
                kappa = Estimate(1.0 - disagree / (n_items * r * (r - 1) * p * (1 - p)), n=n_items)
        binary = np.column_stack([c[:, k], m - c[:, k]])
        alpha = krippendorff_alpha(binary, n_resamples=n_resamples, confidence=confidence, rng=gen)
        out.append(CategoryAgreement(k, n_k, specific, kappa, alpha))
    return tuple(out)


# --------------------------------------------------------------------------- per rater


def _cohen_from_table(table: np.ndarray, min_shared: int) -> Estimate:
    n = int(table.sum())
    if n == 0:
        return Estimate.undefined("no shared items", n=0)
    if n < min_shared:
        return Estimate.undefined(f"fewer than {min_shared} shared items", n=n)
    rows, cols = table.sum(1), table.sum(0)
    expected_disagree = n * n - int((rows * cols).sum())
    if expected_disagree == 0:
        return Estimate.undefined("both used one and the same category only: zero expected disagreement", n=n)
    observed_disagree = n - int(np.trace(table))
    # kappa = (p_o - p_e) / (1 - p_e) = 1 - n (n - agree) / (n^2 - sum_k r_k c_k)
    return Estimate(1.0 - n * observed_disagree / expected_disagree, n=n)


def cohen_kappa(table: npt.ArrayLike, *, min_shared: int = 2) -> Estimate:
    """Cohen's (1960) kappa from a K x K cross-table of two raters on their shared items.

    kappa = (p_o - p_e) / (1 - p_e), p_o = sum_k t_kk / n, p_e = sum_k t_k. t_.k / n^2.
    Undefined with fewer than `min_shared` items or zero expected disagreement.
    """
    t = _as_counts(table)
    if t.shape[0] != t.shape[1]:
        raise StatsInputError("need a square K x K table")
    return _cohen_from_table(t, min_shared)


def pair_tables(codes: npt.ArrayLike, n_categories: int | None = None) -> np.ndarray:
    """(R, R, K, K) cross-tables: [a, b, j, k] = items rater a coded j and rater b coded k.

    One sparse product X^T X of the (items x rater*category) one-hot matrix X.
    """
    x, k = _as_codes(codes, n_categories)
    n_items, n_raters = x.shape
    item, rater = np.nonzero(x >= 0)
    cols = rater * k + x[item, rater]
    onehot = sparse.csr_matrix(
        (np.ones(item.size, dtype=np.int64), (item, cols)), shape=(n_items, n_raters * k)
    )
    return (onehot.T @ onehot).toarray().reshape(n_raters, k, n_raters, k).transpose(0, 2, 1, 3)


@dataclass(frozen=True)
class PairwiseKappa:
    """Cohen's kappa and raw agreement of raters a and b over the items both rated."""

    rater_a: int
    rater_b: int
    n_shared: int
    agreement: Estimate
    kappa: Estimate


def pairwise_cohen_kappa(
    codes: npt.ArrayLike, n_categories: int | None = None, *, min_shared: int = 2
) -> tuple[PairwiseKappa, ...]:
    """Cohen's kappa for every pair of raters on their shared items (codes: -1 = missing)."""
    tables = pair_tables(codes, n_categories)
    out = []
    for a, b in combinations(range(tables.shape[0]), 2):
        t = tables[a, b]
        n = int(t.sum())
        if n == 0:
            agreement = Estimate.undefined("no shared items", n=0)
        else:
            low, high = wilson_interval(int(np.trace(t)), n)
            agreement = Estimate(float(np.trace(t)) / n, n=n, ci_low=low, ci_high=high)
        out.append(PairwiseKappa(a, b, n, agreement, _cohen_from_table(t, min_shared)))
    return tuple(out)


@dataclass(frozen=True)
class RaterConsensus:
    """One rater against the consensus of the other raters of each item.

    `n_compared` items had a consensus of the others; `n_no_consensus` items this rater rated had
    too few other ratings or a tie. `agreement` has a Wilson interval; `kappa` is Cohen's kappa of
    the rater's codes against the consensus codes.
    """

    rater: int
    n_compared: int
    n_no_consensus: int
    agreement: Estimate
    kappa: Estimate


def rater_vs_consensus(
    codes: npt.ArrayLike,
    n_categories: int | None = None,
    *,
    min_others: int = 1,
    rule: LabelRule = "plurality",
    min_shared: int = 2,
) -> tuple[RaterConsensus, ...]:
    """Each rater against the consensus of the others (leave-one-out, `resolve_final_labels` rule).

    For rater r and an item r rated, the others' counts are the item's counts minus r's rating;
    the consensus is their "plurality" (unique most frequent), "majority" (> half) or
    "unanimous" category, required to rest on at least `min_others` ratings; ties give none.
    """
    x, k = _as_codes(codes, n_categories)
    counts = count_matrix(x, k)
    out = []
    for r in range(x.shape[1]):
        items = np.flatnonzero(x[:, r] >= 0)
        own = x[items, r]
        others = counts[items].copy()
        others[np.arange(items.size), own] -= 1
        consensus = resolve_final_labels(others, rule=rule)
        ok = (consensus >= 0) & (others.sum(1) >= min_others)
        n_cmp = int(ok.sum())
        table = np.bincount(own[ok] * k + consensus[ok], minlength=k * k).reshape(k, k)
        if n_cmp == 0:
            agreement = Estimate.undefined("no item with a consensus of the other raters")
        else:
            hits = int(np.trace(table))
            low, high = wilson_interval(hits, n_cmp)
            agreement = Estimate(hits / n_cmp, n=n_cmp, ci_low=low, ci_high=high)
        kappa = _cohen_from_table(table, min_shared)
        out.append(RaterConsensus(r, n_cmp, int(items.size - n_cmp), agreement, kappa))
    return tuple(out)
