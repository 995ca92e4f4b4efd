"""Agreement statistics against published values, the krippendorff package and statsmodels."""

import krippendorff
import numpy as np
import pytest
from statsmodels.stats import inter_rater

from annotations.stats import (
    Estimate,
    StatsInputError,
    category_agreement,
    cohen_kappa,
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
from annotations.stats.agreement import _alpha_features, _alpha_statistic

from .conftest import codes_from_reliability_data


def _codes(vector):
    return codes_from_reliability_data(vector["reliability_data"], vector["categories"])


def _random_codes(rng, n_items, n_raters, n_categories, missing):
    codes = rng.integers(0, n_categories, size=(n_items, n_raters))
    # raters agree more than chance so alpha is not ~0
    truth = rng.integers(0, n_categories, size=(n_items, 1))
    codes = np.where(rng.random((n_items, n_raters)) < 0.6, truth, codes)
    codes[rng.random((n_items, n_raters)) < missing] = -1
    return codes


def _package_alpha(codes):
    data = np.where(codes >= 0, codes, np.nan).T.astype(float)
    return krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")


# --------------------------------------------------------------------------- published vectors


@pytest.mark.parametrize(
    "vector_id",
    [
        "krippendorff2011_C_nominal_missing",
        "krippendorff2011_A_binary_two_observers",
        "extra_krippendorff_3coders_15units",
    ],
)
def test_alpha_published_examples(vectors, vector_id):
    vector = vectors[vector_id]
    codes = _codes(vector)
    result = krippendorff_alpha_codes(codes, len(vector["categories"]), n_resamples=0)
    assert result.value == pytest.approx(vector["published"]["alpha_nominal"], abs=5e-4)
    assert result.value == pytest.approx(vector["computed"]["alpha_nominal_krippendorff_pkg"], abs=1e-12)


def test_alpha_krippendorff_2011_c_exact_fraction_and_pairable_values(vectors):
    vector = vectors["krippendorff2011_C_nominal_missing"]
    counts = count_matrix(_codes(vector), 5)
    coincidences = coincidence_matrix(counts)
    assert coincidences.sum() == pytest.approx(vector["computed"]["pairable_values_n"])
    # n_c from the data (Krippendorff 2011, section C, prints 9 13 10 5 3); the vector file's
    # "exact_fraction_nominal" (9, 10, 10, 8, 3 and 1 - 390/1146 = 0.660) contradicts its own
    # published 0.743, which 1 - (n - 1)(n - sum o_cc) / (n^2 - sum n_c^2) = 1 - 39 * 8 / 1216 gives.
    np.testing.assert_allclose(coincidences.sum(0), [9, 13, 10, 5, 3])
    assert np.trace(coincidences) == pytest.approx(32)
    result = krippendorff_alpha(counts, n_resamples=0)
    assert result.value == pytest.approx(1 - 39 * 8 / 1216, abs=1e-12)
    assert result.n == 11  # unit 12 has a single rating and is dropped


def test_alpha_krippendorff_2011_a_hand_derivation(vectors):
    vector = vectors["krippendorff2011_A_binary_two_observers"]
    counts = count_matrix(_codes(vector), 2)
    np.testing.assert_allclose(coincidence_matrix(counts), vector["hand_derivation"]["coincidence_matrix"])
    assert krippendorff_alpha(counts, n_resamples=0).value == pytest.approx(2 / 21, abs=1e-12)


def test_cohen_kappa_krippendorff_2011_a(vectors):
    vector = vectors["krippendorff2011_A_binary_two_observers"]
    (pair,) = pairwise_cohen_kappa(_codes(vector), 2)
    assert pair.n_shared == 10
    assert pair.agreement.value == pytest.approx(0.6)
    assert pair.kappa.value == pytest.approx(1 / 11, abs=1e-12)
    assert pair.kappa.value == pytest.approx(vector["computed"]["cohen_kappa_statsmodels"], abs=1e-12)
    assert cohen_kappa([[5, 3], [1, 1]]).value == pytest.approx(1 / 11, abs=1e-12)


def test_fleiss_kappa_krippendorff_2011_a_equals_scott_pi(vectors):
    vector = vectors["krippendorff2011_A_binary_two_observers"]
    counts = count_matrix(_codes(vector), 2)
    kappa = fleiss_kappa(counts, n_resamples=0).value
    assert kappa == pytest.approx(1 / 21, abs=1e-12)
    assert kappa == pytest.approx(vector["computed"]["fleiss_kappa_statsmodels"], abs=1e-12)


def test_fleiss_1971_diagnoses(vectors):
    vector = vectors["fleiss1971_diagnoses"]
    counts = count_matrix(np.array(vector["ratings"]) - 1, 5)
    np.testing.assert_array_equal(counts, vector["count_table"])
    kappa = fleiss_kappa(counts, n_resamples=0)
    assert kappa.value == pytest.approx(vector["published"]["fleiss_kappa"], abs=5e-3)
    assert kappa.value == pytest.approx(vector["published"]["fleiss_kappa_irr_kappam_fleiss"], abs=5e-8)
    assert kappa.value == pytest.approx(vector["computed"]["fleiss_kappa_statsmodels"], abs=1e-12)
    alpha = krippendorff_alpha(counts, n_resamples=0).value
    assert alpha == pytest.approx(vector["computed"]["alpha_nominal_krippendorff_pkg"], abs=1e-12)
    # complete data: alpha = kappa_F + (1 - kappa_F) / (N R)
    assert alpha == pytest.approx(kappa.value + (1 - kappa.value) / 180, abs=1e-12)


def test_fleiss_wikipedia_example(vectors):
    vector = vectors["extra_wikipedia_fleiss_10x14"]
    counts = np.array(vector["count_table"])
    kappa = fleiss_kappa(counts, n_resamples=0)
    assert kappa.value == pytest.approx(vector["published"]["fleiss_kappa"], abs=5e-4)
    assert kappa.value == pytest.approx(vector["computed"]["fleiss_kappa_statsmodels"], abs=1e-12)
    p_bar = percent_agreement(counts, n_resamples=0).value
    assert p_bar == pytest.approx(vector["published"]["P_bar"], abs=5e-4)
    # kappa = (P_bar - P_e) / (1 - P_e)  =>  P_e = (P_bar - kappa) / (1 - kappa)
    p_e = (p_bar - kappa.value) / (1 - kappa.value)
    assert p_e == pytest.approx(vector["published"]["P_e"], abs=5e-4)
    alpha = krippendorff_alpha(counts, n_resamples=0).value
    assert alpha == pytest.approx(
        vector["computed"]["alpha_nominal_krippendorff_pkg_value_counts"], abs=1e-12
    )


def test_edge_case_one_category_is_undefined_not_nan(vectors):
    assert vectors["edge_cases"]["results"]["one_category_fleiss_statsmodels"] == "nan"
    counts = np.array([[3, 0], [3, 0], [3, 0]])
    for result in (krippendorff_alpha(counts), fleiss_kappa(counts)):
        assert result.value is None
        assert "one category" in result.reason
        assert result.n == 3


def test_edge_case_singleton_units_dropped(vectors):
    data = vectors["edge_cases"]["results"]["singleton_units_dropped"]["reliability_data"]
    codes = codes_from_reliability_data(data, [1, 2])
    result = krippendorff_alpha_codes(codes, 2)
    assert result.value is None
    assert result.reason == "all pairable ratings fall in one category: zero expected disagreement"
    assert result.n == 1


# --------------------------------------------------------------------------- cross-checks


@pytest.mark.parametrize("seed", range(5))
def test_alpha_matches_krippendorff_package_with_missing(seed):
    rng = np.random.default_rng(seed)
    codes = _random_codes(rng, n_items=500, n_raters=4 + seed, n_categories=6, missing=0.3)
    ours = krippendorff_alpha_codes(codes, 6, n_resamples=0).value
    assert ours == pytest.approx(_package_alpha(codes), abs=1e-9)


def test_fleiss_matches_statsmodels_on_random_complete_data():
    rng = np.random.default_rng(7)
    counts = count_matrix(_random_codes(rng, 300, 5, 4, missing=0.0), 4)
    ours = fleiss_kappa(counts, n_resamples=0).value
    assert ours == pytest.approx(inter_rater.fleiss_kappa(counts, method="fleiss"), abs=1e-12)


def test_pairwise_cohen_matches_statsmodels_on_shared_items():
    rng = np.random.default_rng(3)
    codes = _random_codes(rng, 400, 4, 5, missing=0.25)
    for pair in pairwise_cohen_kappa(codes, 5):
        a, b = codes[:, pair.rater_a], codes[:, pair.rater_b]
        shared = (a >= 0) & (b >= 0)
        table = np.zeros((5, 5))
        np.add.at(table, (a[shared], b[shared]), 1)
        assert pair.n_shared == shared.sum()
        assert pair.kappa.value == pytest.approx(inter_rater.cohens_kappa(table).kappa, abs=1e-12)


def test_pair_tables_agree_with_loops():
    rng = np.random.default_rng(4)
    codes = _random_codes(rng, 50, 3, 3, missing=0.3)
    tables = pair_tables(codes, 3)
    for a in range(3):
        for b in range(3):
            both = (codes[:, a] >= 0) & (codes[:, b] >= 0)
            expected = np.zeros((3, 3), dtype=int)
            np.add.at(expected, (codes[both, a], codes[both, b]), 1)
            np.testing.assert_array_equal(tables[a, b], expected)


def test_category_kappa_equals_dichotomised_fleiss_and_averages_to_overall(vectors):
    counts = np.array(vectors["fleiss1971_diagnoses"]["count_table"])
    per_category = category_agreement(counts)
    p = counts.sum(0) / counts.sum()
    for k, cat in enumerate(per_category):
        binary = np.column_stack([counts[:, k], 6 - counts[:, k]])
        assert cat.kappa.value == pytest.approx(inter_rater.fleiss_kappa(binary), abs=1e-12)
        assert cat.alpha.value == pytest.approx(cat.kappa.value + (1 - cat.kappa.value) / 180, abs=1e-12)
    # Fleiss (1971): kappa = sum_j p_j q_j kappa_j / sum_j p_j q_j
    weights = p * (1 - p)
    weighted = sum(w * c.kappa.value for w, c in zip(weights, per_category, strict=True)) / weights.sum()
    assert weighted == pytest.approx(fleiss_kappa(counts, n_resamples=0).value, abs=1e-12)


def test_specific_agreement_two_raters():
    # 2 raters, category 0: a = 3 items both chose it, b + c = 2 items one did
    codes = np.array([[0, 0], [0, 0], [0, 0], [0, 1], [1, 0], [1, 1]])
    first = category_agreement(count_matrix(codes, 2))[0]
    assert first.specific_agreement.value == pytest.approx(2 * 3 / (2 * 3 + 2))
    assert first.n_ratings == 8


def test_category_kappa_undefined_with_missing_ratings_alpha_defined():
    counts = np.array([[2, 0], [1, 2], [0, 3], [1, 0]])
    cats = category_agreement(counts)
    assert cats[0].kappa.value is None
    assert "unequal" in cats[0].kappa.reason
    assert cats[0].alpha.value is not None


def test_percent_agreement_variable_raters():
    counts = np.array([[2, 0], [1, 1], [2, 1], [1, 0]])
    # per item: 1, 0, 1/3 (item 4 unpairable)
    result = percent_agreement(counts, n_resamples=0)
    assert result.value == pytest.approx((1 + 0 + 1 / 3) / 3)
    assert result.n == 3


def test_rater_vs_consensus():
    codes = np.array(
        [
            [0, 0, 0, 0],
            [0, 0, 0, 1],
            [1, 1, 1, 0],
            [2, 1, 0, 2],
            [1, 1, -1, -1],  # one other rating only: below min_others
        ]
    )
    r0, r1, _, r3 = rater_vs_consensus(codes, 3, min_others=2)
    assert (r0.n_compared, r0.n_no_consensus) == (3, 2)  # item 4: others 1, 0, 2 tie
    assert r0.agreement.value == pytest.approx(1.0)
    assert (r1.n_compared, r1.n_no_consensus) == (4, 1)  # item 4: others 2, 0, 2 -> 2
    assert r1.agreement.value == pytest.approx(3 / 4)
    assert (r3.n_compared, r3.n_no_consensus) == (3, 1)
    assert r3.agreement.value == pytest.approx(1 / 3)
    assert r3.agreement.ci_low < r3.agreement.value < r3.agreement.ci_high
    # with two annotators per item (the study's design) the consensus of the other is its label
    pair = rater_vs_consensus(codes[:, :2], 3)
    assert pair[0].agreement.value == pytest.approx(4 / 5)


# --------------------------------------------------------------------------- undefined and errors


def test_no_pairable_items_is_undefined():
    result = krippendorff_alpha(np.array([[1, 0], [0, 1], [0, 0]]))
    assert result == Estimate(value=None, reason="no item has two or more ratings", n=0)
    assert not percent_agreement(np.array([[1, 0]])).is_defined


def test_fleiss_unequal_raters_raises_clear_error():
    with pytest.raises(StatsInputError, match="same number of ratings"):
        fleiss_kappa(np.array([[2, 1], [1, 1]]))
    with pytest.raises(StatsInputError, match="at least two ratings"):
        fleiss_kappa(np.array([[1, 0], [0, 1]]))
    assert issubclass(StatsInputError, ValueError)


def test_bad_inputs_raise():
    with pytest.raises(StatsInputError):
        krippendorff_alpha(np.array([1, 2, 3]))
    with pytest.raises(StatsInputError):
        krippendorff_alpha(np.array([[1, -1]]))
    with pytest.raises(StatsInputError):
        count_matrix(np.array([[0, 3]]), 3)
    with pytest.raises(StatsInputError):
        count_matrix(np.array([[0.5, 1.0]]))


def test_cohen_undefined_cases():
    codes = np.array([[0, 0, -1], [0, 0, -1], [1, -1, 0]])
    pairs = {(p.rater_a, p.rater_b): p for p in pairwise_cohen_kappa(codes, 2)}
    assert pairs[0, 1].kappa.reason == "both used one and the same category only: zero expected disagreement"
    assert pairs[1, 2].n_shared == 0
    assert pairs[1, 2].kappa.reason == "no shared items"
    assert not pairs[1, 2].agreement.is_defined
    assert pairs[0, 2].kappa.reason == "fewer than 2 shared items"


def test_estimate_invariants():
    with pytest.raises(StatsInputError):
        Estimate(value=None)
    with pytest.raises(StatsInputError):
        Estimate(value=0.5, reason="both")
    with pytest.raises(StatsInputError):
        Estimate(value=float("nan"))


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_sum_decomposition_matches_explicit_resample():
    rng = np.random.default_rng(11)
    counts = count_matrix(_random_codes(rng, 200, 4, 3, missing=0.3), 3)
    counts = counts[counts.sum(1) >= 2]
    for _ in range(5):
        idx = rng.integers(0, counts.shape[0], counts.shape[0])
        weights = np.bincount(idx, minlength=counts.shape[0])
        via_sums = _alpha_statistic((weights @ _alpha_features(counts))[None, :])[0]
        assert via_sums == pytest.approx(krippendorff_alpha(counts[idx], n_resamples=0).value, abs=1e-12)
    rows, freq = count_patterns(counts)
    assert freq.sum() == counts.shape[0]
    np.testing.assert_allclose(freq @ _alpha_features(rows), _alpha_features(counts).sum(0))


def test_bootstrap_interval_seeded_and_sensible():
    rng = np.random.default_rng(5)
    counts = count_matrix(_random_codes(rng, 2000, 3, 4, missing=0.2), 4)
    first = krippendorff_alpha(counts, rng=42)
    again = krippendorff_alpha(counts, rng=42)
    assert first == again
    assert first.ci_low < first.value < first.ci_high
    assert first.ci_high - first.ci_low < 0.1
    # a naive loop bootstrap gives the same interval up to Monte Carlo error
    pairable = counts[counts.sum(1) >= 2]
    gen = np.random.default_rng(1)
    naive = [
        krippendorff_alpha(pairable[gen.integers(0, len(pairable), len(pairable))], n_resamples=0).value
        for _ in range(300)
    ]
    low, high = np.quantile(naive, [0.025, 0.975])
    assert first.ci_low == pytest.approx(low, abs=0.01)
    assert first.ci_high == pytest.approx(high, abs=0.01)


def test_bootstrap_for_fleiss_and_agreement_contains_value():
    rng = np.random.default_rng(6)
    counts = count_matrix(_random_codes(rng, 500, 4, 3, missing=0.0), 3)
    for result in (fleiss_kappa(counts, rng=1), percent_agreement(counts, rng=1)):
        assert result.ci_low < result.value < result.ci_high


@pytest.mark.parametrize("n_categories", [3, 45])  # 45: too many for a 64-bit row key, np.unique path
def test_patterns_count_distinct_rows(n_categories):
    rng = np.random.default_rng(9)
    counts = count_matrix(_random_codes(rng, 3000, 4, n_categories, missing=0.2), n_categories)
    rows, freq = count_patterns(counts)
    expected_rows, expected_freq = np.unique(counts, axis=0, return_counts=True)
    order = np.lexsort(rows.T[::-1])
    np.testing.assert_array_equal(rows[order], expected_rows)
    np.testing.assert_array_equal(freq[order], expected_freq)
    result = krippendorff_alpha(counts, rng=0, n_resamples=200)
    assert result.ci_low < result.value < result.ci_high


def test_confidence_must_be_a_probability():
    with pytest.raises(StatsInputError, match="confidence"):
        krippendorff_alpha(np.array([[2, 0], [1, 1]]), confidence=95)
