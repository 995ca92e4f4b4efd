"""Per-annotator agreement for many scopes at once (campaign, each model, each group) in one pass.

`annotations.stats.pairwise_cohen_kappa` and `rater_vs_consensus` take one item x rater code
matrix per scope; at 1M items x 11 scopes that is most of the dashboard's time. The functions here
give the same results (the tests compare them) from label rows directly, where an "item" may stand
for several items with the same labels (`LabelRows.weight`, the label sets of selectors.stats):

- pair tables: the labels are ordered by item and every two labels of one item form a pair
  (rater a < rater b, code a, code b); one bincount per scope partition over
  (scope, a, b, code a, code b) gives every K x K cross-table of every scope.
- consensus of the others: it depends only on the item's count row and the rater's own code, so
  it is resolved once per distinct count row ("pattern") and code with
  `resolve_final_labels(rule="plurality")`, then looked up for each label.

The coefficients of each scope's tables come from `annotations.stats`
(`pairwise_kappa_from_tables`, `consensus_from_tables`).

`scope_agreement` gives alpha, Fleiss' kappa, percent and per-category agreement of one scope:
they depend only on how often each distinct count row occurs, so a scope of 1M items is a table of
a few hundred rows, passed as weighted rows to the `annotations.stats` functions. No Django here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from annotations.stats import (
    CategoryAgreement,
    Estimate,
    PairwiseKappa,
    RaterConsensus,
    StatsInputError,
    category_agreement,
    consensus_from_tables,
    count_patterns,
    fleiss_kappa,
    krippendorff_alpha,
    pairwise_kappa_from_tables,
    percent_agreement,
    resolve_final_labels,
)


@dataclass(frozen=True)
class LabelRows:
    """One row per label: item index, annotator index, category code; and the item x category counts.

    `weight` (one per item, default 1) is how many identical items each item stands for.
    """

    item: np.ndarray
    annotator: np.ndarray
    code: np.ndarray
    counts: np.ndarray
    n_annotators: int
    weight: np.ndarray | None = None

    def item_weight(self) -> np.ndarray:
        """The weight of each item (1 when none was given)."""
        return np.ones(self.counts.shape[0], dtype=np.int64) if self.weight is None else self.weight


Partitions = list[tuple[int, np.ndarray]]


def _scope_cells(
    partitions: Partitions,
    items: np.ndarray,
    inner: np.ndarray,
    inner_size: int,
    n_scopes: int,
    *,
    weight: np.ndarray,
) -> np.ndarray:
    """Weighted counts of `inner` cell ids per scope: (n_scopes, inner_size), summing each partition.

    `weight` is per item; each entry counts its item's weight.
    """
    out = np.zeros((n_scopes, inner_size), dtype=np.int64)
    w = weight[items].astype(np.float64)
    for offset, scope_of_item in partitions:
        scope = scope_of_item[items]
        ok = scope >= 0
        size = int(scope_of_item.max()) + 1 if scope_of_item.size and scope_of_item.max() >= 0 else 0
        if size == 0:
            continue
        flat = np.bincount(scope[ok] * inner_size + inner[ok], weights=w[ok], minlength=size * inner_size)
        out[offset : offset + size] += np.rint(flat).astype(np.int64).reshape(size, inner_size)
    return out


def pairwise_kappa_by_scope(
    rows: LabelRows, partitions: Partitions, n_scopes: int, *, min_shared: int = 2
) -> list[tuple[PairwiseKappa, ...]]:
    """Per scope, Cohen's kappa of every pair of annotators (as `stats.pairwise_cohen_kappa`).

    `partitions` lists (first scope index, scope of each item within the partition or -1).
    """
    k, r = rows.counts.shape[1], rows.n_annotators
    order = np.argsort(rows.item, kind="stable")  # near-sorted input: timsort is linear
    item, rater, code = rows.item[order], rows.annotator[order], rows.code[order]
    cells = np.zeros((n_scopes, r * r * k * k), dtype=np.int64)
    weight = rows.item_weight()
    max_labels = int(rows.counts.sum(1).max()) if rows.counts.size else 0
    for d in range(1, max_labels):
        same = np.flatnonzero(item[d:] == item[:-d])
        a, b = rater[same], rater[same + d]
        ca, cb = code[same], code[same + d]
        swap = a > b
        a, b = np.where(swap, b, a), np.where(swap, a, b)
        ca, cb = np.where(swap, cb, ca), np.where(swap, ca, cb)
        inner = ((a * r + b) * k + ca) * k + cb
        cells += _scope_cells(partitions, item[same], inner, r * r * k * k, n_scopes, weight=weight)
    tables = cells.reshape(n_scopes, r, r, k, k)
    return [pairwise_kappa_from_tables(tables[s], min_shared=min_shared) for s in range(n_scopes)]


def consensus_by_scope(
    rows: LabelRows, partitions: Partitions, n_scopes: int, *, min_shared: int = 2
) -> list[tuple[RaterConsensus, ...]]:
    """Per scope, each annotator against the plurality of the others (as `stats.rater_vs_consensus`)."""
    counts = rows.counts
    k, r = counts.shape[1], rows.n_annotators
    n_items = counts.shape[0]
    base = int(counts.max()) + 1 if counts.size else 1
    keys = counts @ (base ** np.arange(k, dtype=np.int64)) if n_items else np.zeros(0, dtype=np.int64)
    patterns_keys, pattern_of_item = np.unique(keys, return_inverse=True)
    patterns = (patterns_keys[:, None] // base ** np.arange(k, dtype=np.int64)[None, :]) % base
    others = np.repeat(patterns, k, axis=0) - np.tile(np.eye(k, dtype=np.int64), (patterns.shape[0], 1))
    consensus = resolve_final_labels(np.maximum(others, 0), rule="plurality").reshape(-1, k)
    has_others = patterns.sum(1) - 1 >= 1
    label_pattern = pattern_of_item.reshape(-1)[rows.item]
    label_consensus = np.where(has_others[label_pattern], consensus[label_pattern, rows.code], -1)
    ok = label_consensus >= 0
    compared = ((rows.annotator * k + rows.code) * k + np.maximum(label_consensus, 0)) * ok
    weight = rows.item_weight()
    tables = _scope_cells(
        partitions, rows.item[ok], compared[ok], r * k * k, n_scopes, weight=weight
    ).reshape(n_scopes, r, k, k)
    rated = _scope_cells(partitions, rows.item, rows.annotator, r, n_scopes, weight=weight)
    return [consensus_from_tables(tables[s], rated[s], min_shared=min_shared) for s in range(n_scopes)]


# --------------------------------------------------------------------------- coefficients from count patterns


@dataclass(frozen=True)
class ScopeAgreement:
    """The agreement coefficients of one scope (see `scope_agreement`)."""

    alpha: Estimate
    fleiss: Estimate
    percent: Estimate
    categories: tuple[CategoryAgreement, ...]


def scope_agreement(
    counts: np.ndarray, *, n_resamples: int, rng: int | None = None, weights: np.ndarray | None = None
) -> ScopeAgreement:
    """Alpha, Fleiss' kappa, percent agreement (bootstrap CIs) and per-category agreement of rated items.

    `weights` (one per row of `counts`) says how many items each row stands for (default 1 each).
    The rows are first reduced to the distinct ones and their frequencies (`count_patterns`), the
    weights the `annotations.stats` functions then take; Fleiss' kappa, which needs the same number
    of ratings on every item, is undefined (with the reason) where that fails.
    """
    rows, freq = count_patterns(counts, weights)
    try:
        fleiss = fleiss_kappa(rows, weights=freq, n_resamples=n_resamples, rng=rng)
    except StatsInputError as error:
        fleiss = Estimate.undefined(str(error), n=int(freq.sum()))
    return ScopeAgreement(
        alpha=krippendorff_alpha(rows, weights=freq, n_resamples=n_resamples, rng=rng),
        fleiss=fleiss,
        percent=percent_agreement(rows, weights=freq, n_resamples=n_resamples, rng=rng),
        categories=category_agreement(rows, weights=freq),
    )
