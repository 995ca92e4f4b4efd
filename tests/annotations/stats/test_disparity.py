"""Disparity statistics against textbook values, scipy and statsmodels."""

import math
from itertools import product

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.contingency_tables import StratifiedTable
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from annotations.stats import (
    NO_LABEL,
    StatsInputError,
    cmh_group_vs_rest,
    cmh_test,
    group_rates,
    group_vs_rest_tables,
    holm_adjust,
    independence_test,
    logistic_group_test,
    max_min_rate_ratio,
    newcombe_difference_interval,
    pairwise_comparisons,
    resolve_final_label,
    resolve_final_labels,
    wilson_interval,
    wilson_intervals,
)

Z = sps.norm.ppf(0.975)

# --------------------------------------------------------------------------- Wilson / Newcombe


@pytest.mark.parametrize(
    ("x", "n", "low", "high"),
    [
        # Newcombe (1998), Stat Med 17:857-872, Table II, method 3 (score interval)
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_newcombe_1998_examples(x, n, low, high):
    got = wilson_interval(x, n)
    assert got == pytest.approx((low, high), abs=5e-5)


@pytest.mark.parametrize(("x", "n"), [(0, 1), (1, 1), (3, 7), (81, 263), (500, 1000), (999, 1000)])
def test_wilson_matches_statsmodels(x, n):
    assert wilson_interval(x, n, z=Z) == pytest.approx(proportion_confint(x, n, method="wilson"), abs=1e-12)


def test_wilson_n_zero_is_nan_pair_and_vectorised():
    low, high = wilson_interval(0, 0)
    assert math.isnan(low)
    assert math.isnan(high)
    lows, highs = wilson_intervals([0, 81, 0], [0, 263, 20])
    assert np.isnan(lows[0])
    assert np.isnan(highs[0])
    assert (lows[1], highs[1]) == pytest.approx(wilson_interval(81, 263))
    assert lows[2] == 0.0
    with pytest.raises(StatsInputError):
        wilson_interval(3, 2)


@pytest.mark.parametrize(
    ("counts", "low", "high"),
    [
        # Newcombe (1998), Stat Med 17:873-890, Table II, method 10 (hybrid score)
        ((56, 70, 48, 80), 0.0524, 0.3339),
        ((9, 10, 3, 10), 0.1705, 0.8090),
        ((6, 7, 2, 7), 0.0582, 0.8062),
        ((5, 56, 0, 29), -0.0381, 0.1926),
        ((0, 10, 0, 20), -0.1611, 0.2775),
        ((0, 10, 0, 10), -0.2775, 0.2775),
        ((10, 10, 0, 20), 0.6791, 1.0),
    ],
)
def test_newcombe_difference_examples(counts, low, high):
    assert newcombe_difference_interval(*counts) == pytest.approx((low, high), abs=5e-5)


# --------------------------------------------------------------------------- group rates


def test_group_rates_and_difference_from_overall():
    x, n = np.array([22, 27, 2]), np.array([100, 100, 50])
    rates = group_rates(x, n)
    overall = x.sum() / n.sum()
    for g, rate in enumerate(rates):
        assert rate.rate.value == pytest.approx(x[g] / n[g])
        assert (rate.rate.ci_low, rate.rate.ci_high) == pytest.approx(wilson_interval(x[g], n[g]))
        assert rate.difference_from_overall.value == pytest.approx(x[g] / n[g] - overall)
        diff = rate.difference_from_overall
        assert diff.ci_low < diff.value < diff.ci_high


def test_group_rates_empty_group_is_undefined():
    rates = group_rates([0, 3], [0, 10])
    assert rates[0].rate.reason == "no observations"
    assert not rates[0].difference_from_overall.is_defined
    assert rates[1].difference_from_overall.reason == "no other group has observations"


def test_max_min_ratio():
    ratio = max_min_rate_ratio([40, 2, 0], [100, 100, 0])
    assert ratio.ratio.value == pytest.approx(20.0)
    assert (ratio.max_group, ratio.min_group) == (0, 1)
    zero = max_min_rate_ratio([4, 0], [10, 10])
    assert zero.ratio.reason == "the lowest rate is 0"
    assert max_min_rate_ratio([0, 0], [10, 10]).ratio.reason == "every rate is 0"
    assert not max_min_rate_ratio([1], [3]).ratio.is_defined


# --------------------------------------------------------------------------- independence


def test_chi_square_when_expected_counts_large():
    table = np.array([[22, 78], [40, 60], [2, 98]])
    result = independence_test(table)
    chi2, p, dof, _ = sps.chi2_contingency(table, correction=False)
    assert result.test == "chi-square"
    assert (result.statistic, result.p_value, result.dof) == pytest.approx((chi2, p, dof))


def test_fisher_for_small_2x2():
    result = independence_test([[1, 9], [5, 5]])
    assert result.test == "fisher-exact"
    assert result.p_value == pytest.approx(sps.fisher_exact([[1, 9], [5, 5]]).pvalue)
    assert result.min_expected < 5


def _exact_freeman_halton_2xk(table):
    """Exact Fisher-Freeman-Halton p-value of a 2 x k table by enumerating the first row."""
    table = np.asarray(table)
    cols, row0 = table.sum(0), table[0].sum()

    def log_prob(first):
        return sum(
            math.lgamma(c + 1) - math.lgamma(a + 1) - math.lgamma(c - a + 1)
            for a, c in zip(first, cols, strict=True)
        )

    observed = log_prob(table[0])
    total = 0.0
    extreme = 0.0
    for first in product(*(range(c + 1) for c in cols)):
        if sum(first) != row0:
            continue
        p = math.exp(log_prob(first))
        total += p
        if log_prob(first) <= observed + 1e-9:
            extreme += p
    return extreme / total


def test_monte_carlo_freeman_halton_for_small_2xk():
    table = [[1, 2, 0, 4], [3, 0, 4, 1]]
    result = independence_test(table, rng=1, n_resamples=20000)
    assert result.test == "fisher-freeman-halton-monte-carlo-20000"
    assert result.p_value == pytest.approx(_exact_freeman_halton_2xk(table), abs=0.01)
    assert independence_test(table, rng=1, n_resamples=20000) == result


def test_independence_undefined_when_one_outcome():
    result = independence_test([[0, 10], [0, 5]])
    assert result.p_value is None
    assert result.test == "none"
    assert "nothing to compare" in result.reason


# --------------------------------------------------------------------------- Holm


def test_holm_textbook_example():
    # Holm-Bonferroni worked example (four hypotheses, alpha = 0.05): reject H1 and H4 only
    p = [0.01, 0.04, 0.03, 0.005]
    adjusted = holm_adjust(p)
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])
    assert (adjusted <= 0.05).tolist() == [True, False, False, True]


def test_holm_matches_statsmodels_and_ignores_nan():
    rng = np.random.default_rng(0)
    p = rng.random(20) ** 3
    np.testing.assert_allclose(holm_adjust(p), multipletests(p, method="holm")[1], atol=1e-15)
    with_nan = holm_adjust([0.01, np.nan, 0.04])
    assert np.isnan(with_nan[1])
    np.testing.assert_allclose(with_nan[[0, 2]], [0.02, 0.04])


def test_pairwise_comparisons_tests_and_holm():
    x, n = np.array([22, 40, 2, 0]), np.array([100, 100, 100, 0])
    comparisons = {(c.group_a, c.group_b): c for c in pairwise_comparisons(x, n)}
    big = comparisons[0, 1]
    assert big.test == "two-proportion-z"
    z_p = 2 * sps.norm.sf(abs((0.22 - 0.40) / math.sqrt(0.31 * 0.69 * (2 / 100))))
    assert big.p_value == pytest.approx(z_p)
    assert comparisons[0, 2].test == "two-proportion-z"  # smallest expected count 12
    assert comparisons[1, 3].p_value is None
    assert comparisons[1, 3].reason == "a compared group has no observations"
    defined = [comparisons[k] for k in [(0, 1), (0, 2), (1, 2)]]
    np.testing.assert_allclose([c.p_holm for c in defined], holm_adjust([c.p_value for c in defined]))


def test_pairwise_uses_fisher_when_small():
    (only,) = pairwise_comparisons([1, 4], [10, 10])
    assert only.test == "fisher-exact"
    assert only.p_value == pytest.approx(sps.fisher_exact([[1, 9], [4, 6]]).pvalue)
    assert only.p_holm == only.p_value


# --------------------------------------------------------------------------- stratified


def test_cmh_matches_hand_formula_and_statsmodels():
    tables = np.array([[[10, 20], [5, 30]], [[8, 12], [6, 20]], [[30, 10], [20, 15]]])
    result = cmh_test(tables)
    a, b, c, d = tables[:, 0, 0], tables[:, 0, 1], tables[:, 1, 0], tables[:, 1, 1]
    n = a + b + c + d
    expected = (a + b) * (a + c) / n
    var = (a + b) * (c + d) * (a + c) * (b + d) / (n * n * (n - 1))
    stat = (a - expected).sum() ** 2 / var.sum()
    assert result.statistic == pytest.approx(stat)
    assert result.p_value == pytest.approx(sps.chi2.sf(stat, 1))
    assert result.odds_ratio.value == pytest.approx((a * d / n).sum() / (b * c / n).sum())
    st = StratifiedTable(np.moveaxis(tables, 0, -1).astype(float))
    assert result.odds_ratio.ci_low == pytest.approx(st.oddsratio_pooled_confint()[0])
    assert result.n_strata_used == 3


def test_cmh_undoes_simpsons_paradox():
    # Within each model the group has the same refusal rate as the rest (OR = 1), but the group is
    # over-represented on the model that refuses more: pooled, it looks refused more often.
    tables = np.array([[[80, 20], [40, 10]], [[5, 45], [20, 180]]])
    pooled = tables.sum(0)
    assert independence_test(pooled).p_value < 1e-6
    result = cmh_test(tables)
    assert result.odds_ratio.value == pytest.approx(1.0)
    assert result.p_value == pytest.approx(1.0)


def test_cmh_degenerate_strata():
    tables = np.array([[[5, 0], [7, 0]], [[0, 0], [3, 4]], [[3, 7], [6, 4]]])
    result = cmh_test(tables)
    assert (result.n_strata_used, result.n_strata_dropped) == (1, 2)
    none_left = cmh_test(tables[:2])
    assert none_left.p_value is None
    assert none_left.odds_ratio.reason == none_left.reason
    zero_cell = cmh_test(np.array([[[0, 10], [3, 7]], [[0, 5], [2, 8]]]))
    assert zero_cell.p_value is not None
    assert "infinite" in zero_cell.odds_ratio.reason


def test_cmh_group_vs_rest_builds_tables():
    x = np.array([[2, 10, 5], [1, 30, 8]])
    n = np.array([[20, 40, 30], [25, 60, 40]])
    tables = group_vs_rest_tables(x, n, 1)
    np.testing.assert_array_equal(tables[0], [[10, 30], [7, 43]])
    assert cmh_group_vs_rest(x, n, 1) == cmh_test(tables)


def test_logistic_lr_matches_individual_level_logit():
    import pandas as pd
    import statsmodels.formula.api as smf

    x = np.array([[22, 27, 2], [40, 26, 4]])
    n = np.array([[100, 90, 80], [100, 110, 70]])
    result = logistic_group_test(x, n)
    rows = []
    for m, g in product(range(2), range(3)):
        rows += [(m, g, 1)] * int(x[m, g]) + [(m, g, 0)] * int(n[m, g] - x[m, g])
    data = pd.DataFrame(rows, columns=["model", "group", "y"])
    full = smf.logit("y ~ C(group) + C(model)", data).fit(disp=0)
    reduced = smf.logit("y ~ C(model)", data).fit(disp=0)
    assert result.statistic == pytest.approx(2 * (full.llf - reduced.llf), rel=1e-6)
    assert result.dof == 2
    assert result.odds_ratios[1] == pytest.approx(math.exp(full.params["C(group)[T.1]"]), rel=1e-5)
    assert result.odds_ratios[0] is None


def test_logistic_degenerate_cases():
    assert logistic_group_test([[0, 0]], [[10, 10]]).reason.startswith("the outcome never varies")
    assert logistic_group_test([[3, 0]], [[10, 0]]).reason == "fewer than two groups have observations"
    separated = logistic_group_test([[0, 5], [0, 7]], [[10, 10], [10, 10]])
    assert separated.p_value < 0.01
    assert "groups [0]" in separated.note
    with pytest.raises(StatsInputError):
        logistic_group_test([1, 2], [3, 4])


# --------------------------------------------------------------------------- final labels


def test_resolve_final_labels():
    counts = np.array([[2, 0, 0], [1, 1, 0], [2, 1, 0], [0, 0, 0], [1, 1, 1], [2, 1, 1]])
    np.testing.assert_array_equal(resolve_final_labels(counts), [0, -1, 0, -1, -1, -1])
    np.testing.assert_array_equal(resolve_final_labels(counts, rule="plurality"), [0, -1, 0, -1, -1, 0])
    np.testing.assert_array_equal(resolve_final_labels(counts, rule="unanimous"), [0, -1, -1, -1, -1, -1])
    adjudicated = [-1, 2, 1, -1, 0, -1]
    np.testing.assert_array_equal(resolve_final_labels(counts, adjudicated), [0, 2, 1, -1, 0, -1])
    assert resolve_final_label([1, 1, 0]) is None
    assert resolve_final_label([1, 1, 0], adjudicated=1) == 1
    assert resolve_final_label([0, 3, 0], rule="unanimous") == 1
    assert NO_LABEL == -1
    with pytest.raises(StatsInputError):
        resolve_final_labels(counts, rule="vote")
