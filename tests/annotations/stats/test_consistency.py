"""Counterfactual consistency: change rates between groups of one template, template gaps."""

import numpy as np
import pytest

from annotations.stats import StatsInputError, change_rates, template_gap_ranking


def _outputs(counts_tg):
    """Explicit list of output categories from one template-group count row."""
    return np.repeat(np.arange(counts_tg.size), counts_tg)


def test_change_rate_hand_example():
    counts = np.array([[[2, 0], [1, 1], [0, 0]]])
    rates = change_rates(counts)
    assert rates.between[0, 0, 1] == pytest.approx(0.5)
    assert rates.between[0, 1, 0] == pytest.approx(0.5)
    assert rates.within[0, 0] == pytest.approx(0.0)
    assert rates.within[0, 1] == pytest.approx(1.0)
    assert rates.excess[0, 0, 1] == pytest.approx(0.0)
    assert np.isnan(rates.between[0, 0, 2])
    assert np.isnan(rates.within[0, 2])
    assert rates.n_templates[0, 2] == 0
    assert np.isnan(rates.mean_between[0, 2])


def test_change_rate_matches_brute_force():
    rng = np.random.default_rng(2)
    counts = rng.integers(0, 4, size=(4, 3, 6))
    counts[1, 2] = 0
    rates = change_rates(counts)
    for t in range(4):
        for a in range(3):
            for b in range(3):
                xa, xb = _outputs(counts[t, a]), _outputs(counts[t, b])
                if xa.size == 0 or xb.size == 0:
                    assert np.isnan(rates.between[t, a, b])
                    continue
                brute = (xa[:, None] != xb[None, :]).mean()
                assert rates.between[t, a, b] == pytest.approx(brute)
            xa = _outputs(counts[t, a])
            if xa.size >= 2:
                off_diagonal = ~np.eye(xa.size, dtype=bool)
                assert rates.within[t, a] == pytest.approx((xa[:, None] != xa[None, :])[off_diagonal].mean())
    assert rates.n_templates[0, 2] == 3
    assert rates.mean_between[0, 2] == pytest.approx(np.nanmean(rates.between[:, 0, 2]))


def test_template_gap_ranking():
    successes = [[1, 5, 2], [3, 3, 3], [0, 0, 0], [9, 0, 0]]
    n = [[10, 10, 10], [10, 10, 10], [0, 5, 0], [10, 10, 0]]
    ranking = template_gap_ranking(successes, n)
    assert [r.template for r in ranking] == [3, 0, 1, 2]
    top = ranking[0]
    assert top.gap.value == pytest.approx(0.9)
    assert (top.max_group, top.min_group, top.max_rate, top.min_rate) == (0, 1, 0.9, 0.0)
    assert ranking[2].gap.value == pytest.approx(0.0)
    assert ranking[3].gap.reason == "fewer than two groups with at least 1 outputs"
    assert template_gap_ranking(successes, n, min_n=11)[0].gap.value is None


def test_bad_shapes_raise():
    with pytest.raises(StatsInputError):
        change_rates(np.zeros((2, 3)))
    with pytest.raises(StatsInputError):
        template_gap_ranking([[1, 2]], [[1, 1]])
