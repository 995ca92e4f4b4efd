"""Agreement between annotators on nominal categories.

Two input shapes, both cheap to build with aggregate queries:

- `counts`: (n_items, n_categories) integers, counts[i, c] = number of annotators who gave
  category c to item i (one `GROUP BY item, category`). Missing ratings are simply not counted,
  so items may have different numbers of ratings.
- `codes`: (n_items, n_raters) integers, codes[i, r] = category code (0..K-1) that rater r gave
  item i, or -1 when r did not rate i; needed for per-rater measures (`annotations.stats.raters`).

Every function also takes `weights`: one whole number per row (item), how many identical items
the row stands for (default 1 each), so a tally of distinct rows gives the result of the expanded
data (each row repeated `weights` times); rows of weight 0 stand for no item.

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

import numpy as np
import numpy.typing as npt

from annotations.stats.disparity import Estimate, StatsInputError

DEFAULT_RESAMPLES = 1000
_MAX_BOOT_CELLS = 20_000_000  # bound on (resamples in one batch) x (patterns), ~160 MB of int64

# --------------------------------------------------------------------------- input helpers


def _whole(x: np.ndarray, what: str) -> np.ndarray:
    """`x` as int64, or StatsInputError unless its entries are whole non-negative numbers."""
    if x.size and not np.issubdtype(x.dtype, np.integer):
        xi = x.astype(np.int64)
        if np.any(xi != x):
            raise StatsInputError(f"{what} must be whole numbers")
        x = xi
    if x.size and x.min() < 0:
        raise StatsInputError(f"{what} must be non-negative")
    return x.astype(np.int64, copy=False)


def _as_counts(counts: npt.ArrayLike) -> np.ndarray:
    c = np.asarray(counts)
    if c.ndim != 2:
        raise StatsInputError(f"need an (n_items, n_categories) matrix, got shape {c.shape}")
    return _whole(c, "counts")


def _as_weights(weights: npt.ArrayLike | None, n_rows: int) -> np.ndarray | None:
    if weights is None:
        return None
    w = np.asarray(weights)
    if w.shape != (n_rows,):
        raise StatsInputError(f"need one weight per row ({n_rows}), got shape {w.shape}")
    return _whole(w, "weights")


def _weighted_counts(
    counts: npt.ArrayLike, weights: npt.ArrayLike | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Checked counts and weights; rows of weight 0 are dropped (they stand for no item)."""
    c = _as_counts(counts)
    w = _as_weights(weights, c.shape[0])
    if w is not None and not w.all():
        c, w = c[w > 0], w[w > 0]
    return c, w


def _pairable(c: np.ndarray, w: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The rows with two or more ratings, and their weights."""
    keep = c.sum(1) >= 2
    return c[keep], None if w is None else w[keep]


def _row_sum(values: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    """Sum over rows (axis 0), each row counted `w` times (once when `w` is None)."""
    return values.sum(0) if w is None else w @ values


def _n_items(c: np.ndarray, w: np.ndarray | None) -> int:
    return int(c.shape[0]) if w is None else int(w.sum())


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


def coincidence_matrix(counts: npt.ArrayLike, *, weights: npt.ArrayLike | None = None) -> np.ndarray:
    """Krippendorff's coincidence matrix o_ck = sum_u w_u (n_uc n_uk - [c = k] n_uc) / (m_u - 1).

    Sums over pairable items (m_u = sum_c n_uc >= 2), item u counting w_u times (`weights`,
    default 1); its total is the number of pairable values.
    """
    c, w = _pairable(*_weighted_counts(counts, weights))
    weighted = c / (c.sum(1) - 1)[:, None]
    if w is not None:
        weighted = weighted * w[:, None]
    return weighted.T @ c - np.diag(weighted.sum(0))


def _rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def count_patterns(
    counts: npt.ArrayLike, weights: npt.ArrayLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of a count matrix and how many items each stands for (row i counting weights[i]).

    Rows come in the order of their key sum_j counts[:, j] base^j (lexicographic on the last column
    first) when that fits in 64 bits, else in np.unique's order; rows of total weight 0 are left out.
    Every statistic here depends on the items only through this table.
    """
    counts = _as_counts(counts)
    weights = _as_weights(weights, counts.shape[0])
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


def _with_interval(
    estimate: Estimate,
    c: np.ndarray,
    w: np.ndarray | None,
    features: Callable[[np.ndarray], np.ndarray],
    statistic: Callable[[np.ndarray], np.ndarray],
    *,
    n_resamples: int,
    confidence: float,
    rng: np.random.Generator | int | None,
) -> Estimate:
    """`estimate` with the percentile bootstrap interval over the items of rows `c` (weights `w`)."""
    if n_resamples <= 0:
        return estimate
    rows, freq = count_patterns(c, w)
    low, high = _bootstrap_interval(
        rows, freq, features, statistic, n_resamples=n_resamples, confidence=confidence, rng=rng
    )
    return Estimate(value=estimate.value, n=estimate.n, ci_low=low, ci_high=high)


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
    weights: npt.ArrayLike | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = 0.95,
    rng: np.random.Generator | int | None = None,
) -> Estimate:
    """Krippendorff's alpha for nominal data from an item x category count matrix.

    Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": with o_ck the coincidence
    matrix over pairable items (>= 2 ratings; others are dropped), n_c = sum_k o_ck and
    n = sum_c n_c, alpha = 1 - (n - 1) (n - sum_c o_cc) / (n^2 - sum_c n_c^2); item u counts
    w_u times (`weights`, default 1), as if its row were repeated. `n` of the result is the number
    of pairable items; the interval is a percentile bootstrap over those items (`n_resamples` = 0
    for none). Undefined when no item is pairable or when all pairable values fall in one category
    (zero expected disagreement).
    """
    c, w = _weighted_counts(counts, weights)
    m = np.einsum("ij->i", c)
    keep = m >= 2
    if w is None:
        n_items = int(keep.sum())
        n_c = np.einsum("ij->j", c) - c[~keep].sum(0)
    else:
        n_items = int(w[keep].sum())
        n_c = w[keep] @ c[keep]
    if n_items == 0:
        return Estimate.undefined("no item has two or more ratings", n=0)
    n = int(n_c.sum())
    expected = n * n - int((n_c * n_c).sum())
    if expected == 0:
        return Estimate.undefined(
            "all pairable ratings fall in one category: zero expected disagreement", n=n_items
        )
    # sum_u w_u sum_c n_uc (n_uc - 1) / (m_u - 1), summed exactly in integers per value of m_u
    same = np.einsum("ij,ij->i", c, c) - m
    if w is not None:
        same = same * w
    same_by_m = np.bincount(m[keep], weights=same[keep])
    sizes = np.flatnonzero(same_by_m)
    agree = float((same_by_m[sizes] / (sizes - 1)).sum()) if sizes.size else 0.0
    value = 1.0 - (n - 1) * (n - agree) / expected
    if n_resamples > 0 and not keep.all():
        c, w = c[keep], None if w is None else w[keep]
    return _with_interval(
        Estimate(value=value, n=n_items),
        c,
        w,
        _alpha_features,
        _alpha_statistic,
        n_resamples=n_resamples,
        confidence=confidence,
        rng=rng,
    )


def krippendorff_alpha_codes(
    codes: npt.ArrayLike,
    n_categories: int | None = None,
    *,
    weights: npt.ArrayLike | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = 0.95,
    rng: np.random.Generator | int | None = None,
) -> Estimate:
    """Krippendorff's nominal alpha from an item x rater code matrix (-1 = missing)."""
    return krippendorff_alpha(
        count_matrix(codes, n_categories),
        weights=weights,
        n_resamples=n_resamples,
        confidence=confidence,
        rng=rng,
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
    weights: npt.ArrayLike | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = 0.95,
    rng: np.random.Generator | int | None = None,
) -> Estimate:
    """Fleiss' kappa (Fleiss 1971) from an item x category count matrix with equal row sums.

    With n ratings per item and N items: P_i = (sum_j n_ij^2 - n) / (n (n - 1)),
    P_bar = mean_i P_i, p_j = sum_i n_ij / (N n), P_e = sum_j p_j^2,
    kappa = (P_bar - P_e) / (1 - P_e); item i counts w_i times in N and the sums (`weights`,
    default 1). Raises StatsInputError if items have different numbers of ratings (use
    `krippendorff_alpha`); undefined when one category holds every rating.
    """
    c, w = _weighted_counts(counts, weights)
    n_raters = _equal_ratings(c)
    n_items = _n_items(c, w)
    col = _row_sum(c, w)
    if (col > 0).sum() < 2:
        return Estimate.undefined("every rating falls in one category: zero expected disagreement", n=n_items)
    features, statistic = _fleiss_features(n_raters), _fleiss_statistic(n_raters)
    sums = np.concatenate([[n_items], [_row_sum(features(c)[:, 1], w)], col])
    value = float(statistic(sums[None, :].astype(float))[0])
    return _with_interval(
        Estimate(value=value, n=n_items),
        c,
        w,
        features,
        statistic,
        n_resamples=n_resamples,
        confidence=confidence,
        rng=rng,
    )


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
    weights: npt.ArrayLike | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = 0.95,
    rng: np.random.Generator | int | None = None,
) -> Estimate:
    """Raw pairwise agreement: mean over items with >= 2 ratings of the share of agreeing pairs.

    P_i = sum_c n_ic (n_ic - 1) / (m_i (m_i - 1)); result = sum_i w_i P_i / sum_i w_i (`weights`,
    default 1: Fleiss' P_bar when every item has the same number of ratings). Bootstrap
    percentile interval over items.
    """
    c, w = _pairable(*_weighted_counts(counts, weights))
    n_items = _n_items(c, w)
    if n_items == 0:
        return Estimate.undefined("no item has two or more ratings", n=0)
    value = float(_row_sum(_agreement_features(c)[:, 1], w) / n_items)
    return _with_interval(
        Estimate(value=value, n=n_items),
        c,
        w,
        _agreement_features,
        _agreement_statistic,
        n_resamples=n_resamples,
        confidence=confidence,
        rng=rng,
    )


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
    weights: npt.ArrayLike | None = None,
    n_resamples: int = 0,
    confidence: float = 0.95,
    rng: np.random.Generator | int | None = None,
) -> tuple[CategoryAgreement, ...]:
    """Per-category agreement (see `CategoryAgreement`) of the pairable items, item i counting w_i times.

    Sums over items are weighted by `weights` (default 1); bootstrap intervals for alpha if asked.
    """
    c, w = _pairable(*_weighted_counts(counts, weights))
    m = c.sum(1)
    n_items = _n_items(c, w)
    equal = n_items > 0 and bool(np.all(m == m[0]))
    coinc = coincidence_matrix(c, weights=w) if n_items else np.zeros((c.shape[1], c.shape[1]))
    gen = _rng(rng) if n_resamples > 0 else None  # one generator across the categories
    out = []
    for k in range(c.shape[1]):
        n_k = int(_row_sum(c[:, k], w))
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
                disagree = float(_row_sum(c[:, k] * (r - c[:, k]), w))
                kappa = Estimate(1.0 - disagree / (n_items * r * (r - 1) * p * (1 - p)), n=n_items)
        binary = np.column_stack([c[:, k], m - c[:, k]])
        alpha = krippendorff_alpha(binary, weights=w, n_resamples=n_resamples, confidence=confidence, rng=gen)
        out.append(CategoryAgreement(k, n_k, specific, kappa, alpha))
    return tuple(out)
