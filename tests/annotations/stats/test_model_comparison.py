"""Model-to-model comparison statistics against independent computations (statsmodels on individual rows)."""

import math

import numpy as np
import pytest
import statsmodels.formula.api as smf
from statsmodels.stats.contingency_tables import StratifiedTable

from annotations.stats.disparity import newcombe_difference_interval
from annotations.stats.model_comparison import gap_change, interaction_test, rate_change

# 2 models x 3 groups: model b closes group 0's gap (refusals, outputs)
X = np.array([[90, 36, 24], [42, 39, 27]])
N = np.full((2, 3), 300)


def _long_rows(x, n):
    rows = {"y": [], "m": [], "g": []}
    for (i, j), k in np.ndenumerate(n):
        for r in range(int(k)):
            rows["y"].append(int(r < x[i, j]))
            rows["m"].append(f"m{i}")
            rows["g"].append(f"g{j}")
    return rows


def test_the_interaction_test_equals_the_likelihood_ratio_of_two_logistic_fits_on_every_output():
    rows = _long_rows(X, N)
    full = smf.logit("y ~ C(m) * C(g)", data=rows).fit(disp=0)
    additive = smf.logit("y ~ C(m) + C(g)", data=rows).fit(disp=0)
    expected = 2 * (full.llf - additive.llf)
    test = interaction_test(X, N)
    assert test.statistic == pytest.approx(expected, rel=1e-7)
    assert test.dof == 2
    assert test.n == 1800
    tables = np.stack([[[X[0, g], N[0, g] - X[0, g]], [X[1, g], N[1, g] - X[1, g]]] for g in range(3)])
    reference = StratifiedTable(np.moveaxis(tables, 0, -1).astype(float)).test_equal_odds()
    assert test.breslow_day_p == pytest.approx(reference.pvalue, rel=1e-9)
    assert test.p_value < 0.05  # the gap of group 0 closed: 30% -> 14% against 8% -> 9%


def test_three_models_and_empty_cells_keep_the_right_degrees_of_freedom():
    x = np.array([[30, 12, 8], [14, 13, 9], [20, 0, 10]])
    n = np.array([[100, 100, 100], [100, 100, 100], [100, 0, 100]])  # model 2 never saw group 1
    rows = _long_rows(x, n)
    additive = smf.logit("y ~ C(m) + C(g)", data=rows).fit(disp=0)
    # the saturated fit's log-likelihood (its design is singular here: m2 x g1 is empty): each cell's rate
    seen = n > 0
    p = x[seen] / n[seen]
    full_llf = float((x[seen] * np.log(p) + (n[seen] - x[seen]) * np.log(1 - p)).sum())
    test = interaction_test(x, n)
    assert test.dof == 8 - 5  # 8 cells, 1 + 2 + 2 additive parameters
    assert test.statistic == pytest.approx(2 * (full_llf - additive.llf), rel=1e-6)
    assert test.breslow_day_p is None  # only with two models


@pytest.mark.parametrize(
    ("x", "n", "reason"),
    [
        ([[3, 4]], [[10, 10]], "fewer than two models"),
        ([[3], [4]], [[10], [10]], "fewer than two groups"),
        ([[0, 0], [0, 0]], [[10, 10], [10, 10]], "never varies"),
        ([[3, 0], [0, 4]], [[10, 0], [0, 10]], "no interaction to test"),
    ],
)
def test_an_untestable_interaction_says_why(x, n, reason):
    test = interaction_test(x, n)
    assert test.statistic is None
    assert test.p_value is None
    assert reason in test.reason


def test_rate_change_is_newcombe_and_the_gap_change_is_the_wald_difference_of_differences():
    change = rate_change(14, 100, 30, 100)
    assert change.value == pytest.approx(-0.16)
    assert (change.ci_low, change.ci_high) == pytest.approx(newcombe_difference_interval(14, 100, 30, 100))
    gap = gap_change((14, 100), (9, 100), (30, 100), (8, 100))
    assert gap.value == pytest.approx((0.14 - 0.09) - (0.30 - 0.08))
    se = math.sqrt(sum(p * (1 - p) / 100 for p in (0.14, 0.09, 0.30, 0.08)))
    assert gap.ci_low == pytest.approx(gap.value - 1.959963984540054 * se)
    assert gap.ci_high == pytest.approx(gap.value + 1.959963984540054 * se)
    assert gap_change((0, 10), (0, 10), (10, 10), (0, 10)).reason.startswith("every rate is 0% or 100%")
    assert "no outputs" in gap_change((1, 10), (0, 0), (1, 10), (1, 10)).reason
