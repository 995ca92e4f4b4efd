"""The one-pass, many-scope annotator agreement equals annotations.stats applied scope by scope."""

import dataclasses

import numpy as np
import pytest

from annotations.analysis.agreement_scopes import (
    LabelRows,
    consensus_by_scope,
    pairwise_kappa_by_scope,
    scope_agreement,
)
from annotations.stats import (
    Estimate,
    StatsInputError,
    category_agreement,
    count_matrix,
    fleiss_kappa,
    krippendorff_alpha,
    pairwise_cohen_kappa,
    percent_agreement,
    rater_vs_consensus,
)


def _random_design(seed: int, n_items: int = 400, n_raters: int = 6, k: int = 4):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n_items)
    codes = np.where(
        rng.random((n_items, n_raters)) < 0.7, truth[:, None], rng.integers(0, k, (n_items, n_raters))
    )
    codes[rng.random((n_items, n_raters)) < 0.5] = -1
    model = rng.integers(0, 3, n_items)
    group = rng.integers(-1, 4, n_items)  # -1: a prompt without a group belongs to no group scope
    item, rater = np.nonzero(codes >= 0)
    shuffle = rng.permutation(item.size)  # labels come from the database in no particular order
    rows = LabelRows(
        item[shuffle], rater[shuffle], codes[item, rater][shuffle], count_matrix(codes, k), n_raters
    )
    masks = [np.ones(n_items, bool)] + [model == m for m in range(3)] + [group == g for g in range(4)]
    partitions = [(0, np.zeros(n_items, dtype=np.int64)), (1, model), (4, group)]
    return codes, rows, masks, partitions, k


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pairwise_kappa_by_scope_equals_per_scope(seed):
    codes, rows, masks, partitions, k = _random_design(seed)
    ours = pairwise_kappa_by_scope(rows, partitions, len(masks))
    for s, mask in enumerate(masks):
        assert ours[s] == pairwise_cohen_kappa(codes[mask], k)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_consensus_by_scope_equals_per_scope(seed):
    codes, rows, masks, partitions, k = _random_design(seed)
    ours = consensus_by_scope(rows, partitions, len(masks))
    for s, mask in enumerate(masks):
        assert ours[s] == rater_vs_consensus(codes[mask], k)


@pytest.mark.parametrize("seed", [0, 1])
def test_by_scope_with_weights_equals_expanded_items(seed):
    codes, rows, masks, partitions, k = _random_design(seed)
    weight = np.random.default_rng(seed).integers(0, 4, codes.shape[0])  # 0: stands for no item
    weighted = dataclasses.replace(rows, weight=weight)
    pairs = pairwise_kappa_by_scope(weighted, partitions, len(masks))
    consensus = consensus_by_scope(weighted, partitions, len(masks))
    for s, mask in enumerate(masks):
        expanded = np.repeat(codes[mask], weight[mask], axis=0)
        assert pairs[s] == pairwise_cohen_kappa(expanded, k)
        assert pairs[s] == pairwise_cohen_kappa(codes[mask], k, weights=weight[mask])
        assert consensus[s] == rater_vs_consensus(expanded, k)
        assert consensus[s] == rater_vs_consensus(codes[mask], k, weights=weight[mask])


def test_empty_design():
    rows = LabelRows(
        np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3), np.int64), 0
    )
    partitions = [(0, np.zeros(0, dtype=np.int64))]
    assert pairwise_kappa_by_scope(rows, partitions, 1) == [()]
    assert consensus_by_scope(rows, partitions, 1) == [()]


def _same(ours: Estimate, theirs: Estimate) -> None:
    assert ours.reason == theirs.reason
    assert ours.n == theirs.n
    if theirs.value is None:
        assert ours.value is None
        return
    assert ours.value == pytest.approx(theirs.value, abs=1e-12)
    for bound in ("ci_low", "ci_high"):
        if getattr(theirs, bound) is None:
            assert getattr(ours, bound) is None
        else:  # the same pattern table and seed give the same resamples
            assert getattr(ours, bound) == pytest.approx(getattr(theirs, bound), abs=1e-12)


def _fleiss_or_reason(counts) -> Estimate:
    try:
        return fleiss_kappa(counts, n_resamples=300, rng=7)
    except StatsInputError as error:
        return Estimate.undefined(str(error), n=counts.shape[0])


@pytest.mark.parametrize(
    ("seed", "missing"),
    [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.0)],
)
def test_scope_agreement_equals_annotations_stats(seed, missing):
    rng = np.random.default_rng(seed)
    n_items, n_raters, k = 500, 3, 5
    truth = rng.integers(0, k, n_items)
    codes = np.where(
        rng.random((n_items, n_raters)) < 0.75, truth[:, None], rng.integers(0, k, (n_items, n_raters))
    )
    codes[rng.random((n_items, n_raters)) < missing] = -1
    counts = count_matrix(codes, k)
    counts = counts[counts.sum(1) > 0]
    ours = scope_agreement(counts, n_resamples=300, rng=7)
    _same(ours.alpha, krippendorff_alpha(counts, n_resamples=300, rng=7))
    _same(ours.percent, percent_agreement(counts, n_resamples=300, rng=7))
    _same(ours.fleiss, _fleiss_or_reason(counts))
    for mine, theirs in zip(ours.categories, category_agreement(counts), strict=True):
        assert (mine.category, mine.n_ratings) == (theirs.category, theirs.n_ratings)
        _same(mine.specific_agreement, theirs.specific_agreement)
        _same(mine.kappa, theirs.kappa)
        _same(mine.alpha, theirs.alpha)


@pytest.mark.parametrize(
    "counts",
    [
        np.zeros((0, 3), dtype=np.int64),  # nothing rated
        np.array([[1, 0, 0], [0, 1, 0]]),  # single ratings only
        np.array([[2, 0, 0], [2, 0, 0], [3, 0, 0]]),  # one category, unequal numbers of ratings
        np.array([[2, 0, 0], [0, 2, 0], [1, 1, 0]]),  # a category nobody used
    ],
)
def test_scope_agreement_undefined_cases_match(counts):
    ours = scope_agreement(counts, n_resamples=50, rng=1)
    _same(ours.alpha, krippendorff_alpha(counts, n_resamples=50, rng=1))
    _same(ours.percent, percent_agreement(counts, n_resamples=50, rng=1))
    try:
        theirs = fleiss_kappa(counts, n_resamples=50, rng=1)
    except StatsInputError as error:
        theirs = Estimate.undefined(str(error), n=counts.shape[0])
    _same(ours.fleiss, theirs)
    pairable = counts[counts.sum(1) >= 2]
    for mine, expected in zip(ours.categories, category_agreement(pairable), strict=True):
        _same(mine.specific_agreement, expected.specific_agreement)
        _same(mine.kappa, expected.kappa)
        _same(mine.alpha, expected.alpha)


@pytest.mark.parametrize(("seed", "missing"), [(0, 0.0), (1, 0.4)])
def test_scope_agreement_with_weights_equals_expanded_rows(seed, missing):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 3, (200, 3))
    codes[rng.random(codes.shape) < missing] = -1
    counts = count_matrix(codes, 3)
    counts = counts[counts.sum(1) > 0]
    weights = rng.integers(0, 5, counts.shape[0])
    ours = scope_agreement(counts, n_resamples=200, rng=3, weights=weights)
    expanded = scope_agreement(np.repeat(counts, weights, axis=0), n_resamples=200, rng=3)
    for field in ("alpha", "fleiss", "percent"):
        _same(getattr(ours, field), getattr(expanded, field))
    for mine, theirs in zip(ours.categories, expanded.categories, strict=True):
        assert mine.n_ratings == theirs.n_ratings
        for field in ("specific_agreement", "kappa", "alpha"):
            _same(getattr(mine, field), getattr(theirs, field))
