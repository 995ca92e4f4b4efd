"""Scorer validation statistics against statsmodels, scipy, hand counts and an item-level bootstrap."""

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.inter_rater import cohens_kappa
from statsmodels.stats.proportion import proportion_confint

from annotations.stats import (
    FlagRate,
    StatsInputError,
    error_rate_by_group,
    flag_rates,
    group_rates,
    scorer_agreement,
    scorer_error_counts,
    scorer_rates,
)

# rows = human final category, columns = scorer category; categories: 0 comply, 1 refuse, 2 partial
TABLE = np.array([[50, 5, 2], [4, 30, 6], [1, 3, 20]])
REFUSAL = [1, 2]

KAPPA_TABLES = [
    TABLE,
    np.array([[20, 5], [10, 15]]),
    np.array([[88, 14, 18], [10, 40, 10], [2, 6, 12]]),
    np.array([[0, 3], [4, 0]]),  # agreement below chance: kappa < 0
    np.random.default_rng(7).integers(0, 40, size=(6, 6)) + np.diag(np.full(6, 60)),
]


def _brute_force_kappas(table, n_resamples, rng):
    """Cohen's kappa of item resamples drawn from the expanded items (one row per item)."""
    k = table.shape[0]
    human, scorer = np.divmod(np.repeat(np.arange(k * k), table.ravel()), k)
    n = human.size
    idx = rng.integers(0, n, size=(n_resamples, n))
    cells = human[idx] * k + scorer[idx] + (np.arange(n_resamples) * k * k)[:, None]
    tables = np.bincount(cells.ravel(), minlength=n_resamples * k * k).reshape(n_resamples, k, k)
    agree = np.einsum("bkk->b", tables) / n
    chance = np.einsum("bk,bk->b", tables.sum(2), tables.sum(1)) / n**2
    return (agree - chance) / (1 - chance)


# --------------------------------------------------------------------------- agreement


@pytest.mark.parametrize("table", KAPPA_TABLES)
def test_kappa_matches_statsmodels(table):
    result = scorer_agreement(table, positive=[1], bootstrap=0)
    assert result.cohen_kappa.value == pytest.approx(cohens_kappa(table).kappa, abs=1e-12)
    assert result.cohen_kappa.n == table.sum()
    assert result.cohen_kappa.ci_low is None


def test_accuracy_is_trace_share_with_wilson_interval():
    result = scorer_agreement(TABLE, positive=REFUSAL, bootstrap=0)
    assert result.n == 121
    assert result.accuracy.value == pytest.approx(100 / 121)
    expected = proportion_confint(100, 121, alpha=0.05, method="wilson")
    assert (result.accuracy.ci_low, result.accuracy.ci_high) == pytest.approx(expected, abs=1e-9)
    at_90 = scorer_agreement(TABLE, positive=REFUSAL, bootstrap=0, alpha=0.1).accuracy
    assert (at_90.ci_low, at_90.ci_high) == pytest.approx(
        proportion_confint(100, 121, alpha=0.1, method="wilson"), abs=1e-9
    )


def test_refusal_precision_recall_f1_hand_counted():
    result = scorer_agreement(TABLE, positive=REFUSAL, bootstrap=0)
    # human refusal rows 1-2, scorer refusal columns 1-2
    tp, fp, fn, tn = 30 + 6 + 3 + 20, 5 + 2, 4 + 1, 50
    assert (result.true_positives, result.false_positives) == (tp, fp)
    assert (result.false_negatives, result.true_negatives) == (fn, tn)
    assert result.precision.value == pytest.approx(59 / 66)
    assert result.precision.n == 66
    assert (result.precision.ci_low, result.precision.ci_high) == pytest.approx(
        proportion_confint(59, 66, method="wilson"), abs=1e-9
    )
    assert result.recall.value == pytest.approx(59 / 64)
    assert result.recall.n == 64
    assert result.f1.value == pytest.approx(2 * (59 / 66) * (59 / 64) / (59 / 66 + 59 / 64))


def test_positive_mask_equals_indices():
    by_index = scorer_agreement(TABLE, positive=REFUSAL, bootstrap=200, seed=3)
    by_mask = scorer_agreement(TABLE, positive=np.array([False, True, True]), bootstrap=200, seed=3)
    assert by_index == by_mask


def test_bootstrap_is_the_multinomial_cell_resample():
    result = scorer_agreement(TABLE, positive=REFUSAL, bootstrap=200, seed=11)
    n = int(TABLE.sum())
    draws = np.random.default_rng(11).multinomial(n, TABLE.ravel() / n, size=200).reshape(200, 3, 3)
    kappas = np.array([cohens_kappa(t).kappa for t in draws])
    assert (result.cohen_kappa.ci_low, result.cohen_kappa.ci_high) == pytest.approx(
        tuple(np.quantile(kappas, [0.025, 0.975])), abs=1e-12
    )
    tp = draws[:, 1:, 1:].sum((1, 2))
    fp, fn = draws[:, 0, 1:].sum(1), draws[:, 1:, 0].sum(1)
    f1 = 2 * tp / (2 * tp + fp + fn)
    assert (result.f1.ci_low, result.f1.ci_high) == pytest.approx(
        tuple(np.quantile(f1, [0.025, 0.975])), abs=1e-12
    )


def test_bootstrap_matches_item_level_bootstrap():
    table = np.array([[120, 15, 5], [12, 90, 8], [6, 10, 34]])
    result = scorer_agreement(table, positive=[1, 2], bootstrap=2000, seed=0)
    brute = _brute_force_kappas(table, 2000, np.random.default_rng(1))
    low, high = np.quantile(brute, [0.025, 0.975])
    assert result.cohen_kappa.ci_low == pytest.approx(low, abs=0.02)
    assert result.cohen_kappa.ci_high == pytest.approx(high, abs=0.02)
    assert result.cohen_kappa.ci_low < result.cohen_kappa.value < result.cohen_kappa.ci_high


def test_bootstrap_interval_near_asymptotic_for_large_n():
    table = KAPPA_TABLES[2] * 50
    result = scorer_agreement(table, positive=[1], bootstrap=2000, seed=0)
    sm = cohens_kappa(table)
    assert result.cohen_kappa.ci_low == pytest.approx(sm.kappa_low, abs=0.01)
    assert result.cohen_kappa.ci_high == pytest.approx(sm.kappa_upp, abs=0.01)


def test_bootstrap_reproducible_with_seed():
    first = scorer_agreement(TABLE, positive=REFUSAL, bootstrap=300, seed=5)
    again = scorer_agreement(TABLE, positive=REFUSAL, bootstrap=300, seed=5)
    other = scorer_agreement(TABLE, positive=REFUSAL, bootstrap=300, seed=6)
    assert first == again
    assert first.cohen_kappa.value == other.cohen_kappa.value
    assert (first.cohen_kappa.ci_low, first.cohen_kappa.ci_high) != (
        other.cohen_kappa.ci_low,
        other.cohen_kappa.ci_high,
    )


def test_empty_table_is_undefined_everywhere():
    result = scorer_agreement(np.zeros((3, 3), dtype=int), positive=REFUSAL)
    assert result.n == 0
    for est in (result.accuracy, result.cohen_kappa, result.precision, result.recall, result.f1):
        assert est.value is None
        assert est.reason == "no items compared"


def test_single_category_kappa_undefined():
    result = scorer_agreement([[12]], positive=[0])
    assert result.accuracy.value == 1.0
    assert result.cohen_kappa.value is None
    assert "zero expected disagreement" in result.cohen_kappa.reason
    assert result.cohen_kappa.n == 12


def test_one_shared_category_kappa_undefined():
    result = scorer_agreement([[9, 0], [0, 0]], positive=[1])
    assert result.cohen_kappa.value is None
    assert result.cohen_kappa.ci_low is None
    assert result.recall.value is None
    assert result.recall.reason == "the humans labelled no item a refusal"
    assert result.precision.value is None
    assert result.precision.reason == "the scorer called no item a refusal"
    assert result.f1.value is None
    assert "neither" in result.f1.reason


def test_no_human_refusal_leaves_precision_defined():
    result = scorer_agreement([[8, 2], [0, 0]], positive=[1], bootstrap=100)
    assert result.recall.value is None
    assert result.precision.value == 0.0
    assert result.f1.value == 0.0
    # humans used one category only: p_o = p_e = 0.8, so kappa = 0 (defined)
    assert result.cohen_kappa.value == pytest.approx(0.0)


def test_kappa_undefined_resamples_are_dropped():
    # kappa defined on the data, but resamples of 3 items often fall in one cell
    result = scorer_agreement([[2, 0], [0, 1]], positive=[1], bootstrap=200, seed=0)
    assert result.cohen_kappa.value == 1.0
    assert result.cohen_kappa.ci_high == 1.0
    assert result.cohen_kappa.ci_low is not None


@pytest.mark.parametrize(
    ("confusion", "kwargs", "message"),
    [
        (np.zeros((2, 3), dtype=int), {}, "square"),
        (np.zeros(4, dtype=int), {}, "square"),
        (np.zeros((2, 2, 2), dtype=int), {}, "one K x K"),
        ([[1, -1], [0, 2]], {}, "non-negative"),
        ([[1.5, 0], [0, 2]], {}, "whole numbers"),
        (TABLE, {"positive": []}, "names no category"),
        (TABLE, {"positive": [3]}, "0..2"),
        (TABLE, {"positive": [True, False]}, "one entry per category"),
        (TABLE, {"positive": [0.5]}, "indices or a boolean mask"),
        (TABLE, {"alpha": 1.0}, "alpha"),
        (TABLE, {"bootstrap": -1}, "bootstrap"),
        (TABLE, {"bootstrap": 1.5}, "bootstrap"),
    ],
)
def test_scorer_agreement_rejects_bad_input(confusion, kwargs, message):
    kwargs = {"positive": [1], **kwargs}
    with pytest.raises(StatsInputError, match=message):
        scorer_agreement(confusion, **kwargs)


# --------------------------------------------------------------------------- errors by group

STACK = np.stack([TABLE, 2 * TABLE, TABLE.T])


def test_error_counts_hand_counted():
    errors, totals = scorer_error_counts(STACK)
    assert errors.tolist() == [21, 42, 21]
    assert scorer_error_counts(STACK, positive=REFUSAL)[0].tolist() == [21, 42, 21]
    assert totals.tolist() == [121, 242, 121]
    misses, refusals = scorer_error_counts(STACK, positive=REFUSAL, kind="miss")
    assert misses.tolist() == [5, 10, 7]  # human refusal rows, scorer column 0
    assert refusals.tolist() == [64, 128, 66]
    alarms, non_refusals = scorer_error_counts(STACK, positive=REFUSAL, kind="false_alarm")
    assert alarms.tolist() == [7, 14, 5]
    assert non_refusals.tolist() == [57, 114, 55]
    by_model, _ = scorer_error_counts(np.stack([STACK, STACK]))
    assert by_model.shape == (2, 3)


def test_error_counts_reject_bad_input():
    with pytest.raises(StatsInputError, match="needs the positive"):
        scorer_error_counts(STACK, kind="miss")
    with pytest.raises(StatsInputError, match="must lie in 0"):
        scorer_error_counts(STACK, positive=[5])
    with pytest.raises(StatsInputError, match="unknown error kind"):
        scorer_error_counts(STACK, positive=REFUSAL, kind="wrong")
    with pytest.raises(StatsInputError, match="square"):
        scorer_error_counts(np.zeros((2, 3, 4), dtype=int))


def test_error_rate_chi_square_matches_scipy():
    errors, totals = np.array([21, 42, 60]), np.array([121, 242, 150])
    result = error_rate_by_group(errors, totals)
    chi2, p, dof, _ = sps.chi2_contingency(np.column_stack([errors, totals - errors]), correction=False)
    assert result.test.test == "chi-square"
    assert result.test.statistic == pytest.approx(chi2)
    assert result.test.p_value == pytest.approx(p)
    assert result.test.dof == dof
    assert result.rates == group_rates(errors, totals)
    assert result.overall.value == pytest.approx(123 / 513)
    assert (result.overall.ci_low, result.overall.ci_high) == pytest.approx(
        proportion_confint(123, 513, method="wilson"), abs=1e-6
    )


def test_error_rate_two_small_groups_use_fisher():
    result = error_rate_by_group([1, 6], [20, 15])
    fisher = sps.fisher_exact([[1, 19], [6, 9]])
    assert result.test.test == "fisher-exact"
    assert result.test.p_value == pytest.approx(fisher.pvalue)
    assert result.test.min_expected < 5


def test_error_rate_small_counts_many_groups_exact_and_seeded():
    first = error_rate_by_group([1, 6, 2], [20, 15, 9], seed=4)
    assert first.test.test.startswith("fisher-freeman-halton")
    assert first == error_rate_by_group([1, 6, 2], [20, 15, 9], seed=4)


def test_error_rate_of_missed_refusals():
    misses, refusals = scorer_error_counts(STACK, positive=REFUSAL, kind="miss")
    result = error_rate_by_group(misses, refusals)
    assert [r.rate.value for r in result.rates] == pytest.approx([5 / 64, 10 / 128, 7 / 66])
    assert result.test.p_value is not None


@pytest.mark.parametrize(
    ("errors", "totals"),
    [([3], [10]), ([3, 0], [10, 0]), ([0, 0], [0, 0]), ([], [])],
)
def test_error_rate_fewer_than_two_groups_is_undefined(errors, totals):
    result = error_rate_by_group(np.array(errors, dtype=int), np.array(totals, dtype=int))
    assert result.test.p_value is None
    assert "fewer than two" in result.test.reason


def test_error_rate_no_errors_is_undefined():
    result = error_rate_by_group([0, 0], [10, 20])
    assert result.test.p_value is None
    assert result.rates[0].rate.value == 0.0


def test_error_rate_rejects_bad_input():
    with pytest.raises(StatsInputError, match="0 <= successes <= n"):
        error_rate_by_group([3, 11], [10, 10])
    with pytest.raises(StatsInputError, match="one count per group"):
        error_rate_by_group([[1]], [[2]])
    with pytest.raises(StatsInputError, match="differ in shape"):
        error_rate_by_group([1, 2], [3])


# --------------------------------------------------------------------------- flags and scorer rates


def test_flag_rates_readable_row():
    harmful, other, unused = flag_rates([0, 7, 0], [412, 50, 0])
    assert (harmful.category, harmful.flagged, harmful.n, other.category) == (0, 0, 412, 1)
    assert isinstance(harmful, FlagRate)
    assert harmful.rate.value == 0.0
    assert harmful.rate.ci_low == 0.0
    assert round(100 * harmful.rate.ci_high, 1) == 0.9  # "0 of 412 (0.0%, 95% CI 0.0-0.9%)"
    assert (other.rate.ci_low, other.rate.ci_high) == pytest.approx(
        proportion_confint(7, 50, method="wilson"), abs=1e-9
    )
    assert unused.rate.value is None
    assert unused.rate.reason == "no item has this human category"
    (at_90,) = flag_rates([7], [50], alpha=0.1)
    assert (at_90.rate.ci_low, at_90.rate.ci_high) == pytest.approx(
        proportion_confint(7, 50, alpha=0.1, method="wilson"), abs=1e-9
    )


def test_flag_rates_reject_bad_input():
    with pytest.raises(StatsInputError, match="0 <= successes <= n"):
        flag_rates([5], [4])
    with pytest.raises(StatsInputError, match="one count per category"):
        flag_rates([[1]], [[2]])


def test_scorer_rates_count_scorer_columns():
    rates = scorer_rates(STACK, positive=REFUSAL)
    assert [r.successes for r in rates] == [66, 132, 64]
    assert [r.n for r in rates] == [121, 242, 121]
    assert rates == group_rates([66, 132, 64], [121, 242, 121])
    with pytest.raises(StatsInputError, match="n_groups"):
        scorer_rates(TABLE, positive=REFUSAL)
