"""Sampling plans: inclusion probabilities, budgets, floors and reproducible seeded draws."""

import numpy as np
import pytest

from annotations.stats import (
    StatsInputError,
    active_inclusion_probabilities,
    capped_probabilities,
    sample_active,
    sample_all,
    sample_stratified,
    sample_uniform,
    uncertainty,
)


def test_sample_all():
    draw = sample_all(5)
    assert draw.design == "all"
    assert draw.size == 5
    assert draw.inclusion_probabilities.tolist() == [1.0] * 5
    assert draw.expected_size == 5


def test_uniform_fixed_size_and_probabilities():
    draw = sample_uniform(100, n=30, seed=7)
    assert draw.size == 30
    assert draw.expected_size == 30
    assert np.all(draw.inclusion_probabilities == 0.3)
    assert draw.seed == 7
    assert draw.indices.tolist() == sorted(draw.indices.tolist())


def test_uniform_fraction_rounds_half_up_and_caps():
    assert sample_uniform(10, fraction=0.25, seed=1).size == 3  # 2.5 -> 3
    assert sample_uniform(10, fraction=0.0, seed=1).size == 0
    assert sample_uniform(10, n=50, seed=1).size == 10
    assert sample_uniform(0, n=5, seed=1).size == 0


def test_uniform_draws_are_reproducible_and_seed_dependent():
    a, b, c = (sample_uniform(1000, n=100, seed=s) for s in (42, 42, 43))
    assert np.array_equal(a.selected, b.selected)
    assert not np.array_equal(a.selected, c.selected)
    fresh = sample_uniform(1000, n=100)
    assert np.array_equal(sample_uniform(1000, n=100, seed=fresh.seed).selected, fresh.selected)


def test_uniform_draw_is_a_simple_random_sample():
    """Each of 20 items drawn with frequency 5/20 over 4000 draws (3 sd = 0.021)."""
    counts = sum(sample_uniform(20, n=5, seed=s).selected.astype(int) for s in range(4000))
    assert np.all(np.abs(counts / 4000 - 0.25) < 0.021)


def test_draw_arrays_are_read_only():
    draw = sample_uniform(10, n=3, seed=1)
    with pytest.raises(ValueError, match="read-only"):
        draw.selected[0] = True


def test_uniform_invalid():
    with pytest.raises(StatsInputError):
        sample_uniform(10, n=3, fraction=0.3)
    with pytest.raises(StatsInputError):
        sample_uniform(10)
    with pytest.raises(StatsInputError):
        sample_uniform(10, fraction=1.5)
    with pytest.raises(StatsInputError):
        sample_uniform(10, n=3, seed=-1)


# --------------------------------------------------------------------------- stratified


def test_stratified_equal_n_per_cell_capped_at_cell_size():
    cells = np.repeat([3, 1, 7], [50, 8, 20])
    draw = sample_stratified(cells, n_per_cell=10, seed=3)
    by_cell = {s.cell: s for s in draw.strata}
    assert [s.cell for s in draw.strata] == [1, 3, 7]
    assert (by_cell[3].size, by_cell[3].expected_n, by_cell[3].probability) == (50, 10, 0.2)
    assert (by_cell[1].size, by_cell[1].expected_n, by_cell[1].probability) == (8, 8, 1.0)
    assert (by_cell[7].expected_n, by_cell[7].probability) == (10, 0.5)
    for cell, stratum in by_cell.items():
        members = cells == cell
        assert draw.selected[members].sum() == stratum.expected_n
        assert np.all(draw.inclusion_probabilities[members] == stratum.probability)
    assert draw.size == draw.expected_size == 28
    assert np.array_equal(sample_stratified(cells, n_per_cell=10, seed=3).selected, draw.selected)


def test_stratified_invalid():
    with pytest.raises(StatsInputError):
        sample_stratified(["a", "b"], n_per_cell=1)
    with pytest.raises(StatsInputError):
        sample_stratified([1, 2], n_per_cell=-1)


# --------------------------------------------------------------------------- active


def test_uncertainty_rules():
    p = np.array([0.5, 0.9, 0.0, 0.2])
    assert uncertainty(p).tolist() == pytest.approx(np.sqrt(2 * p * (1 - p)).tolist())
    assert uncertainty(p, "least_confidence").tolist() == pytest.approx(np.minimum(p, 1 - p).tolist())
    three = np.array([[0.6, 0.3, 0.1], [1.0, 0.0, 0.0]])
    assert uncertainty(three).tolist() == pytest.approx([np.sqrt(1 - 0.36 - 0.09 - 0.01), 0.0])
    assert uncertainty(three, "least_confidence").tolist() == pytest.approx([0.4, 0.0])
    with pytest.raises(StatsInputError):
        uncertainty([[0.5, 0.6]])
    with pytest.raises(StatsInputError):
        uncertainty([0.5], rule="entropy")


def test_capped_probabilities_redistribute_the_excess():
    w = np.array([100.0, 50.0, 10.0, 1.0, 1.0, 1.0, 1.0])
    pi = capped_probabilities(w, 3.5)
    assert pi.sum() == pytest.approx(3.5)
    # round 1 caps 100 and 50; the 1.5 left gives 10 a share of 10/14 * 1.5 > 1: round 2 caps it
    assert pi.tolist() == pytest.approx([1.0, 1.0, 1.0, 0.125, 0.125, 0.125, 0.125])
    pi = capped_probabilities(np.array([4.0, 2.0, 1.0, 1.0]), 2.0)
    assert pi.tolist() == pytest.approx([1.0, 0.5, 0.25, 0.25])
    assert capped_probabilities(w, 7).tolist() == [1.0] * 7
    with pytest.raises(StatsInputError):
        capped_probabilities([1.0, 0.0], 1)
    with pytest.raises(StatsInputError):
        capped_probabilities([1.0, 1.0], 0)


@pytest.mark.parametrize("rule", ["sqrt_variance", "least_confidence"])
@pytest.mark.parametrize(("budget", "tau"), [(10, 0.2), (60, 0.2), (150, 0.05), (40, 1.0)])
def test_active_probabilities_budget_floor_and_order(rule, budget, tau):
    rng = np.random.default_rng(5)
    p = rng.dirichlet([0.3, 0.3, 0.3], size=200)
    pi = active_inclusion_probabilities(p, budget=budget, uniform_share=tau, rule=rule)
    assert pi.sum() == pytest.approx(budget, rel=1e-12)
    assert np.all(pi <= 1)
    assert np.all(pi >= tau * budget / 200 - 1e-12)
    u = uncertainty(p, rule)
    order = np.argsort(u)
    assert np.all(np.diff(pi[order]) >= -1e-12)  # more uncertain, more likely
    if tau == 1.0:
        assert pi == pytest.approx(np.full(200, budget / 200))


def test_active_with_confident_scorer_everywhere_is_uniform():
    pi = active_inclusion_probabilities(np.array([0.0, 1.0, 1.0, 0.0]), budget=2, uniform_share=0.1)
    assert pi.tolist() == [0.5] * 4
    with pytest.raises(StatsInputError):
        active_inclusion_probabilities([0.3, 0.6], budget=1, uniform_share=0.0)


def test_active_draw_is_poisson_with_the_stated_probabilities():
    p = np.random.default_rng(6).beta(0.5, 0.5, size=50)
    first = sample_active(p, budget=10, seed=9)
    assert first.design == "active"
    assert first.expected_size == pytest.approx(10)
    assert np.array_equal(sample_active(p, budget=10, seed=9).selected, first.selected)
    draws = np.array([sample_active(p, budget=10, seed=s).selected for s in range(3000)])
    pi = first.inclusion_probabilities
    # each item's frequency within 4 sd of its pi (50 items: 4 sd keeps the test far from flaky)
    assert np.all(np.abs(draws.mean(0) - pi) <= 4 * np.sqrt(pi * (1 - pi) / 3000) + 1e-9)
    assert draws.sum(1).mean() == pytest.approx(10, abs=0.15)


def test_active_split_by_cell_gives_each_cell_its_budget():
    rng = np.random.default_rng(8)
    cells = np.repeat([0, 1, 2], [100, 40, 5])
    draw = sample_active(rng.random(145), budget=10, cells=cells, seed=1)
    assert [s.expected_n for s in draw.strata] == pytest.approx([10, 10, 5])
    for s in draw.strata:
        assert draw.inclusion_probabilities[cells == s.cell].sum() == pytest.approx(s.expected_n)
    with pytest.raises(StatsInputError):
        sample_active(rng.random(5), budget=2, cells=[0, 1])
