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

The coefficients themselves come from `annotations.stats` (`cohen_kappa`, `wilson_interval`).

`scope_agreement` does the same for alpha, Fleiss' kappa, percent and per-category agreement: they
depend only on how often each distinct count row occurs, so a scope of 1M items is a table of a
few hundred rows. No Django here.
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
    cohen_kappa,
    resolve_final_labels,
    wilson_interval,
)

# The bootstrap over count patterns and the per-item feature/statistic pairs of annotations.stats,
# reused so the intervals here are exactly those of its public functions (same draws for one seed).
from annotations.stats.agreement import (
    _agreement_features,
    _agreement_statistic,
    _alpha_features,
    _alpha_statistic,
    _bootstrap_interval,
    _equal_ratings,
    _fleiss_features,
    _fleiss_statistic,
    _patterns,
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
    weight = rows.item_weight()
    tables = _scope_cells(
        partitions, rows.item[ok], compared[ok], r * k * k, n_scopes, weight=weight
    ).reshape(n_scopes, r, k, k)
    rated = _scope_cells(partitions, rows.item, rows.annotator, r, n_scopes, weight=weight)
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


# --------------------------------------------------------------------------- coefficients from count patterns


@dataclass(frozen=True)
class ScopeAgreement:
    """The agreement coefficients of one scope (see `scope_agreement`)."""

    alpha: Estimate
    fleiss: Estimate
    percent: Estimate
    categories: tuple[CategoryAgreement, ...]


def _weighted_alpha(rows: np.ndarray, freq: np.ndarray) -> Estimate:
    """Nominal alpha of pairable count rows occurring `freq` times (formula of stats.krippendorff_alpha)."""
    n_items = int(freq.sum())
    if n_items == 0:
        return Estimate.undefined("no item has two or more ratings", n=0)
    n_c = freq @ rows
    n = int(n_c.sum())
    expected = n * n - int((n_c * n_c).sum())
    if expected == 0:
        return Estimate.undefined(
            "all pairable ratings fall in one category: zero expected disagreement", n=n_items
        )
    m = rows.sum(1)
    agree = float(freq @ (((rows * (rows - 1)).sum(1)) / (m - 1)))
    return Estimate(1.0 - (n - 1) * (n - agree) / expected, n=n_items)


def _weighted_categories(rows: np.ndarray, freq: np.ndarray) -> tuple[CategoryAgreement, ...]:
    """stats.category_agreement (no bootstrap) from pairable count rows and their frequencies."""
    m = rows.sum(1)
    n_items = int(freq.sum())
    equal = n_items > 0 and bool(np.all(m == m[0]))
    weighted = rows / (m - 1)[:, None] * freq[:, None]
    coincidence = weighted.T @ rows - np.diag(weighted.sum(0))
    out = []
    for k in range(rows.shape[1]):
        n_k = int(freq @ rows[:, k])
        if n_k == 0:
            specific = Estimate.undefined("category not used on any pairable item", n=n_items)
        else:
            specific = Estimate(float(coincidence[k, k] / coincidence[k].sum()), n=n_items)
        if not equal:
            kappa = Estimate.undefined(
                "items have unequal numbers of ratings (or none is pairable): see alpha", n=n_items
            )
        else:
            r = int(m[0])
            p = n_k / (n_items * r)
            if p in (0.0, 1.0):
                kappa = Estimate.undefined(
                    "category never or always used: zero expected disagreement", n=n_items
                )
            else:
                disagree = float(freq @ (rows[:, k] * (r - rows[:, k])))
                kappa = Estimate(1.0 - disagree / (n_items * r * (r - 1) * p * (1 - p)), n=n_items)
        binary = np.column_stack([rows[:, k], m - rows[:, k]])
        out.append(CategoryAgreement(k, n_k, specific, kappa, _weighted_alpha(binary, freq)))
    return tuple(out)


def _bootstrap(
    estimate: Estimate, rows: np.ndarray, freq: np.ndarray, *, functions, n_resamples: int, rng: int | None
) -> Estimate:
    """`estimate` with the percentile bootstrap interval of stats (features, statistic = `functions`)."""
    features, statistic = functions
    if not estimate.is_defined or n_resamples <= 0:
        return estimate
    low, high = _bootstrap_interval(
        rows, freq, features, statistic, n_resamples=n_resamples, confidence=0.95, rng=rng
    )
    return Estimate(estimate.value, n=estimate.n, ci_low=low, ci_high=high)


def _weighted_fleiss(rows: np.ndarray, freq: np.ndarray, n_resamples: int, rng: int | None) -> Estimate:
    """Fleiss' kappa (stats.fleiss_kappa) from the distinct rows of every rated item and their frequencies."""
    try:
        n_raters = _equal_ratings(rows)
    except StatsInputError as error:
        return Estimate.undefined(str(error), n=int(freq.sum()))
    n_items = int(freq.sum())
    if ((freq @ rows) > 0).sum() < 2:
        return Estimate.undefined("every rating falls in one category: zero expected disagreement", n=n_items)
    features, statistic = _fleiss_features(n_raters), _fleiss_statistic(n_raters)
    value = float(statistic((freq @ features(rows))[None, :])[0])
    return _bootstrap(
        Estimate(value, n=n_items),
        rows,
        freq,
        functions=(features, statistic),
        n_resamples=n_resamples,
        rng=rng,
    )


def scope_agreement(
    counts: np.ndarray, *, n_resamples: int, rng: int | None = None, weights: np.ndarray | None = None
) -> ScopeAgreement:
    """Alpha, Fleiss' kappa, percent agreement (bootstrap CIs) and per-category agreement of rated items.

    `weights` (one per row of `counts`) says how many items each row stands for (default 1 each).

    Each is a sum over items of a term that depends only on the item's count row, so they are
    computed from the distinct rows and their frequencies (the same reduction and the same
    bootstrap `annotations.stats` uses internally) instead of passes over every item; tests check
    the results against `krippendorff_alpha`, `fleiss_kappa`, `percent_agreement` and
    `category_agreement`.
    """
    rows_all, freq_all = _patterns(counts, weights)
    fleiss = _weighted_fleiss(rows_all, freq_all, n_resamples, rng)
    pairable = rows_all.sum(1) >= 2
    rows, freq = rows_all[pairable], freq_all[pairable]
    alpha = _bootstrap(
        _weighted_alpha(rows, freq), rows, freq, functions=(_alpha_features, _alpha_statistic),
        n_resamples=n_resamples, rng=rng,
    )  # fmt: skip
    if freq.size == 0:
        percent = Estimate.undefined("no item has two or more ratings", n=0)
    else:
        value = float(_agreement_statistic((freq @ _agreement_features(rows))[None, :])[0])
        functions = (_agreement_features, _agreement_statistic)
        percent = _bootstrap(
            Estimate(value, n=int(freq.sum())),
            rows,
            freq,
            functions=functions,
            n_resamples=n_resamples,
            rng=rng,
        )
    return ScopeAgreement(alpha, fleiss, percent, _weighted_categories(rows, freq))
