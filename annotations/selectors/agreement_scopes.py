"""Per-annotator agreement for many scopes at once (campaign, each model, each group) in one pass.

`annotations.stats.pairwise_cohen_kappa` and `rater_vs_consensus` take one item x rater code
matrix per scope; at 1M items x 11 scopes that is most of the dashboard's time. The functions here
give the same results (the tests compare them) from the label rows directly:

- pair tables: the labels are ordered by item and every two labels of one item form a pair
  (rater a < rater b, code a, code b); one bincount per scope partition over
  (scope, a, b, code a, code b) gives every K x K cross-table of every scope.
- consensus of the others: it depends only on the item's count row and the rater's own code, so
  it is resolved once per distinct count row ("pattern") and code with
  `resolve_final_labels(rule="plurality")`, then looked up for each label.

The coefficients themselves come from `annotations.stats` (`cohen_kappa`, `wilson_interval`).
No Django here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from annotations.stats import (
    Estimate,
    PairwiseKappa,
    RaterConsensus,
    cohen_kappa,
    resolve_final_labels,
    wilson_interval,
)


@dataclass(frozen=True)
class LabelRows:
    """One row per label: item index, annotator index, category code; and the item x category counts."""

    item: np.ndarray
    annotator: np.ndarray
    code: np.ndarray
    counts: np.ndarray
    n_annotators: int


Partitions = list[tuple[int, np.ndarray]]


def _scope_cells(
    partitions: Partitions, items: np.ndarray, inner: np.ndarray, inner_size: int, n_scopes: int
) -> np.ndarray:
    """Counts of `inner` cell ids per scope: (n_scopes, inner_size), summing each scope partition."""
    out = np.zeros((n_scopes, inner_size), dtype=np.int64)
    for offset, scope_of_item in partitions:
        scope = scope_of_item[items]
        ok = scope >= 0
        size = int(scope_of_item.max()) + 1 if scope_of_item.size and scope_of_item.max() >= 0 else 0
        if size == 0:
            continue
        flat = np.bincount(scope[ok] * inner_size + inner[ok], minlength=size * inner_size)
        out[offset : offset + size] += flat.reshape(size, inner_size)
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
    max_labels = int(rows.counts.sum(1).max()) if rows.counts.size else 0
    for d in range(1, max_labels):
        same = np.flatnonzero(item[d:] == item[:-d])
        a, b = rater[same], rater[same + d]
        ca, cb = code[same], code[same + d]
        swap = a > b
        a, b = np.where(swap, b, a), np.where(swap, a, b)
        ca, cb = np.where(swap, cb, ca), np.where(swap, ca, cb)
        inner = ((a * r + b) * k + ca) * k + cb
        cells += _scope_cells(partitions, item[same], inner, r * r * k * k, n_scopes)
    tables = cells.reshape(n_scopes, r, r, k, k)
    out = []
    for s in range(n_scopes):
        pairs = []
        for a in range(r):
            for b in range(a + 1, r):
                t = tables[s, a, b]
                n = int(t.sum())
                if n == 0:
                    agreement = Estimate.undefined("no shared items", n=0)
                else:
                    low, high = wilson_interval(int(np.trace(t)), n)
                    agreement = Estimate(float(np.trace(t)) / n, n=n, ci_low=low, ci_high=high)
                pairs.append(PairwiseKappa(a, b, n, agreement, cohen_kappa(t, min_shared=min_shared)))
        out.append(tuple(pairs))
    return out


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
    tables = _scope_cells(partitions, rows.item[ok], compared[ok], r * k * k, n_scopes).reshape(
        n_scopes, r, k, k
    )
    rated = _scope_cells(partitions, rows.item, rows.annotator, r, n_scopes)
    out = []
    for s in range(n_scopes):
        results = []
        for a in range(r):
            table = tables[s, a]
            n_cmp = int(table.sum())
            if n_cmp == 0:
                agreement = Estimate.undefined("no item with a consensus of the other raters")
            else:
                hits = int(np.trace(table))
                low, high = wilson_interval(hits, n_cmp)
                agreement = Estimate(hits / n_cmp, n=n_cmp, ci_low=low, ci_high=high)
            kappa = cohen_kappa(table, min_shared=min_shared)
            results.append(RaterConsensus(a, n_cmp, int(rated[s, a]) - n_cmp, agreement, kappa))
        out.append(tuple(results))
    return out
