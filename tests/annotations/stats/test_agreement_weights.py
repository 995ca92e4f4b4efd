"""A weighted call (each row standing for `weights` identical items) equals the call on the expanded rows."""

import numpy as np
import pytest

from annotations.stats import (
    Estimate,
    StatsInputError,
    category_agreement,
    coincidence_matrix,
    count_matrix,
    count_patterns,
    fleiss_kappa,
    krippendorff_alpha,
    krippendorff_alpha_codes,
    pair_tables,
    pairwise_cohen_kappa,
    percent_agreement,
    rater_vs_consensus,
)

from .conftest import codes_from_reliability_data


def _design(seed: int, *, missing: float, n_items: int = 120, n_raters: int = 4, k: int = 3):
    """Codes (items x raters, -1 = missing) and a weight per item (some 0), raters agreeing 70%."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n_items)
    codes = np.where(
        rng.random((n_items, n_raters)) < 0.7, truth[:, None], rng.integers(0, k, (n_items, n_raters))
    )
    codes[rng.random((n_items, n_raters)) < missing] = -1
    weights = rng.integers(0, 6, n_items)
    return codes, weights, k


def _close(weighted: Estimate, expanded: Estimate) -> None:
    assert (weighted.reason, weighted.n) == (expanded.reason, expanded.n)
    for field in ("value", "ci_low", "ci_high"):
        mine, theirs = getattr(weighted, field), getattr(expanded, field)
        assert (mine is None) == (theirs is None)
        if theirs is not None:
            assert mine == pytest.approx(theirs, abs=1e-12)


@pytest.mark.parametrize(("seed", "missing"), [(0, 0.0), (1, 0.3), (2, 0.6)])
def test_count_statistics_weighted_equal_expanded(seed, missing):
    codes, weights, k = _design(seed, missing=missing)
    counts = count_matrix(codes, k)
    expanded = np.repeat(counts, weights, axis=0)
    for function in (krippendorff_alpha, percent_agreement):
        # the same distinct rows and frequencies give the same bootstrap draws for one seed
        _close(
            function(counts, weights=weights, n_resamples=200, rng=3),
            function(expanded, n_resamples=200, rng=3),
        )
    np.testing.assert_allclose(
        coincidence_matrix(counts, weights=weights), coincidence_matrix(expanded), rtol=0, atol=1e-9
    )
    _close(
        krippendorff_alpha_codes(codes, k, weights=weights, n_resamples=0),
        krippendorff_alpha_codes(np.repeat(codes, weights, axis=0), k, n_resamples=0),
    )
    weighted_cats = category_agreement(counts, weights=weights, n_resamples=100, rng=5)
    for mine, theirs in zip(weighted_cats, category_agreement(expanded, n_resamples=100, rng=5), strict=True):
        assert (mine.category, mine.n_ratings) == (theirs.category, theirs.n_ratings)
        _close(mine.specific_agreement, theirs.specific_agreement)
        _close(mine.kappa, theirs.kappa)
        _close(mine.alpha, theirs.alpha)


def test_fleiss_weighted_equals_expanded(vectors):
    counts = np.array(vectors["fleiss1971_diagnoses"]["count_table"])
    weights = np.random.default_rng(4).integers(0, 5, counts.shape[0])
    expanded = np.repeat(counts, weights, axis=0)
    _close(
        fleiss_kappa(counts, weights=weights, n_resamples=200, rng=1),
        fleiss_kappa(expanded, n_resamples=200, rng=1),
    )
    # the distinct rows and their frequencies stand for the data
    rows, freq = count_patterns(counts)
    _close(fleiss_kappa(rows, weights=freq, n_resamples=0), fleiss_kappa(counts, n_resamples=0))
    _close(
        fleiss_kappa(counts, weights=np.ones(counts.shape[0], dtype=int), rng=2), fleiss_kappa(counts, rng=2)
    )


def test_fleiss_ignores_rows_of_weight_zero():
    counts = np.array([[2, 1], [1, 2], [3, 0], [1, 1]])  # the last row alone has 2 ratings
    weights = np.array([3, 2, 1, 0])
    _close(
        fleiss_kappa(counts, weights=weights, rng=0), fleiss_kappa(np.repeat(counts, weights, axis=0), rng=0)
    )
    with pytest.raises(StatsInputError, match="same number of ratings"):
        fleiss_kappa(counts, weights=[3, 2, 1, 1])


@pytest.mark.parametrize(("seed", "missing"), [(0, 0.0), (1, 0.3), (2, 0.6)])
def test_per_rater_statistics_weighted_equal_expanded(seed, missing):
    codes, weights, k = _design(seed, missing=missing)
    expanded = np.repeat(codes, weights, axis=0)
    np.testing.assert_array_equal(pair_tables(codes, k, weights=weights), pair_tables(expanded, k))
    assert pairwise_cohen_kappa(codes, k, weights=weights) == pairwise_cohen_kappa(expanded, k)
    for rule in ("plurality", "majority"):
        assert rater_vs_consensus(codes, k, weights=weights, rule=rule) == rater_vs_consensus(
            expanded, k, rule=rule
        )


def test_published_vector_with_repeated_units(vectors):
    vector = vectors["krippendorff2011_C_nominal_missing"]
    codes = codes_from_reliability_data(vector["reliability_data"], vector["categories"])
    counts = count_matrix(codes, len(vector["categories"]))
    doubled = krippendorff_alpha(counts, weights=np.full(counts.shape[0], 2), n_resamples=0)
    assert doubled.value == pytest.approx(krippendorff_alpha(np.tile(counts, (2, 1)), n_resamples=0).value)
    assert doubled.n == 22  # 11 pairable units, each twice
    _close(
        krippendorff_alpha(counts, weights=np.ones(counts.shape[0], dtype=int), rng=2),
        krippendorff_alpha(counts, rng=2),
    )


def test_all_weights_zero_is_no_item():
    counts = np.array([[2, 0], [1, 1]])
    assert krippendorff_alpha(counts, weights=[0, 0]) == Estimate.undefined("no item has two or more ratings")
    assert not percent_agreement(counts, weights=[0, 0]).is_defined
    with pytest.raises(StatsInputError, match="at least one item"):
        fleiss_kappa(counts, weights=[0, 0])


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([1, 2, 3], "one weight per row"),
        ([1.5, 1], "whole numbers"),
        ([1, -1], "non-negative"),
        ([[1, 1]], "one weight"),
    ],
)
def test_bad_weights_raise(weights, message):
    counts = np.array([[2, 0], [1, 1]])
    with pytest.raises(StatsInputError, match=message):
        krippendorff_alpha(counts, weights=weights)
    with pytest.raises(StatsInputError, match=message):
        pairwise_cohen_kappa(np.array([[0, 1], [1, 1]]), 2, weights=weights)
    # whole numbers in a float array are weights too
    _close(
        krippendorff_alpha(counts, weights=[2.0, 1.0], rng=0),
        krippendorff_alpha([[2, 0], [2, 0], [1, 1]], rng=0),
    )
