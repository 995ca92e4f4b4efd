"""Agreement of individual raters: Cohen's kappa of each pair, each rater against the others.

Input: `codes`, (n_items, n_raters) integers, codes[i, r] = category code (0..K-1) rater r gave
item i, or -1 when r did not rate i (see `annotations.stats.agreement`), with optional `weights`,
one whole number per item: how many identical items the row stands for (default 1). The results
are functions of K x K cross-tables, so the `*_from_tables` functions also serve callers that
build the tables themselves (annotations.analysis.agreement_scopes, for many scopes at once).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import numpy.typing as npt
from scipy import sparse

from annotations.stats.agreement import _as_codes, _as_counts, _as_weights, _whole, count_matrix
from annotations.stats.disparity import (
    Estimate,
    LabelRule,
    StatsInputError,
    resolve_final_labels,
    wilson_interval,
)


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
    Undefined with fewer than `min_shared` items or zero expected disagreement. A table of
    weighted items (t_jk = sum of the weights of the items coded j and k) is the table of the
    expanded items.
    """
    t = _as_counts(table)
    if t.shape[0] != t.shape[1]:
        raise StatsInputError("need a square K x K table")
    return _cohen_from_table(t, min_shared)


def _table_agreement(table: np.ndarray, reason: str) -> Estimate:
    """Share of a cross-table on its diagonal, trace / n, with a Wilson interval; `reason` if n == 0."""
    n = int(table.sum())
    if n == 0:
        return Estimate.undefined(reason, n=0)
    hits = int(np.trace(table))
    low, high = wilson_interval(hits, n)
    return Estimate(hits / n, n=n, ci_low=low, ci_high=high)


def pair_tables(
    codes: npt.ArrayLike, n_categories: int | None = None, *, weights: npt.ArrayLike | None = None
) -> np.ndarray:
    """(R, R, K, K) cross-tables: [a, b, j, k] = items rater a coded j and rater b coded k.

    One sparse product X^T W X of the (items x rater*category) one-hot matrix X, with W the
    diagonal of the item weights (`weights`, default 1).
    """
    x, k = _as_codes(codes, n_categories)
    n_items, n_raters = x.shape
    w = _as_weights(weights, n_items)
    item, rater = np.nonzero(x >= 0)
    cols = rater * k + x[item, rater]
    shape = (n_items, n_raters * k)
    onehot = sparse.csr_matrix((np.ones(item.size, dtype=np.int64), (item, cols)), shape=shape)
    weighted = onehot if w is None else sparse.csr_matrix((w[item], (item, cols)), shape=shape)
    return (onehot.T @ weighted).toarray().reshape(n_raters, k, n_raters, k).transpose(0, 2, 1, 3)


@dataclass(frozen=True)
class PairwiseKappa:
    """Cohen's kappa and raw agreement of raters a and b over the items both rated."""

    rater_a: int
    rater_b: int
    n_shared: int
    agreement: Estimate
    kappa: Estimate


def pairwise_kappa_from_tables(tables: npt.ArrayLike, *, min_shared: int = 2) -> tuple[PairwiseKappa, ...]:
    """Cohen's kappa and raw agreement (Wilson interval) of every pair a < b from `pair_tables`."""
    t = _whole(np.asarray(tables), "tables")
    if t.ndim != 4 or t.shape[0] != t.shape[1] or t.shape[2] != t.shape[3]:
        raise StatsInputError(f"need (R, R, K, K) cross-tables, got shape {t.shape}")
    out = []
    for a, b in combinations(range(t.shape[0]), 2):
        table = t[a, b]
        agreement = _table_agreement(table, "no shared items")
        out.append(PairwiseKappa(a, b, int(table.sum()), agreement, _cohen_from_table(table, min_shared)))
    return tuple(out)


def pairwise_cohen_kappa(
    codes: npt.ArrayLike,
    n_categories: int | None = None,
    *,
    weights: npt.ArrayLike | None = None,
    min_shared: int = 2,
) -> tuple[PairwiseKappa, ...]:
    """Cohen's kappa for every pair of raters on their shared items (codes: -1 = missing).

    Item i counts w_i times (`weights`, default 1); see `cohen_kappa` and `pair_tables`.
    """
    return pairwise_kappa_from_tables(
        pair_tables(codes, n_categories, weights=weights), min_shared=min_shared
    )


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


def consensus_from_tables(
    tables: npt.ArrayLike, n_rated: npt.ArrayLike, *, min_shared: int = 2
) -> tuple[RaterConsensus, ...]:
    """`RaterConsensus` of each rater r from its (K x K) table of own code x consensus code.

    `tables` is (R, K, K), `n_rated` (R,) the number of items each rater rated (with or without a
    consensus of the others); agreement = trace / n with a Wilson interval, kappa = Cohen's.
    """
    t = _whole(np.asarray(tables), "tables")
    if t.ndim != 3 or t.shape[1] != t.shape[2]:
        raise StatsInputError(f"need (R, K, K) tables, got shape {t.shape}")
    rated = _as_weights(n_rated, t.shape[0])
    out = []
    for r, table in enumerate(t):
        n_cmp = int(table.sum())
        agreement = _table_agreement(table, "no item with a consensus of the other raters")
        kappa = _cohen_from_table(table, min_shared)
        out.append(RaterConsensus(r, n_cmp, int(rated[r]) - n_cmp, agreement, kappa))
    return tuple(out)


def rater_vs_consensus(
    codes: npt.ArrayLike,
    n_categories: int | None = None,
    *,
    weights: npt.ArrayLike | None = None,
    min_others: int = 1,
    rule: LabelRule = "plurality",
    min_shared: int = 2,
) -> tuple[RaterConsensus, ...]:
    """Each rater against the consensus of the others (leave-one-out, `resolve_final_labels` rule).

    For rater r and an item r rated, the others' counts are the item's counts minus r's rating;
    the consensus is their "plurality" (unique most frequent), "majority" (> half) or
    "unanimous" category, required to rest on at least `min_others` ratings; ties give none.
    Item i counts w_i times (`weights`, default 1). See `consensus_from_tables`.
    """
    x, k = _as_codes(codes, n_categories)
    w = _as_weights(weights, x.shape[0])
    counts = count_matrix(x, k)
    tables = np.zeros((x.shape[1], k, k), dtype=np.int64)
    n_rated = np.zeros(x.shape[1], dtype=np.int64)
    for r in range(x.shape[1]):
        items = np.flatnonzero(x[:, r] >= 0)
        own = x[items, r]
        others = counts[items].copy()
        others[np.arange(items.size), own] -= 1
        consensus = resolve_final_labels(others, rule=rule)
        ok = (consensus >= 0) & (others.sum(1) >= min_others)
        cells = own[ok] * k + consensus[ok]
        if w is None:
            tables[r] = np.bincount(cells, minlength=k * k).reshape(k, k)
            n_rated[r] = items.size
        else:
            tables[r] = np.rint(np.bincount(cells, weights=w[items][ok], minlength=k * k)).reshape(k, k)
            n_rated[r] = w[items].sum()
    return consensus_from_tables(tables, n_rated, min_shared=min_shared)
