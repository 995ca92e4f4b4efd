"""Prediction-powered estimators against ppi_py, statsmodels, the active-inference formulas and a seeded
coverage simulation."""

import math

import numpy as np
import ppi_py
import pytest
import statsmodels.api as sm
from scipy import stats as sps
from scipy.special import expit
from statsmodels.stats.multitest import multipletests

from annotations.stats import (
    MeanEstimate,
    StatsInputError,
    active_inclusion_probabilities,
    active_mean_ci,
    classical_mean_ci,
    differences_from_control,
    ppi_lambda,
    ppi_mean_ci,
    sample_active,
    sample_uniform,
    z_quantile,
)

Z = sps.norm.ppf(0.975)


def _cell(rng, n, n_unlabelled, *, hard=False, slope=3.0, shift=-0.3):
    """A calibrated scorer: f = P(refusal), Y ~ Bernoulli(f); hard=True gives its 0/1 calls instead."""
    f = expit(shift + slope * rng.standard_normal(n + n_unlabelled))
    y = (rng.random(n) < f[:n]).astype(float)
    yhat = (f > 0.5).astype(float) if hard else f
    return y, yhat[:n], yhat[n:]


def _bounds(ci):
    low, high = ci
    return float(np.ravel(low)[0]), float(np.ravel(high)[0])


CASES = [
    # (seed, n labelled, N unlabelled, hard 0/1 predictions)
    (0, 50, 500, False),
    (1, 10, 2000, False),
    (2, 200, 100, False),  # more labelled than unlabelled
    (3, 30, 300, True),
    (5, 2, 5, False),  # two labels, one of each
    (4, 120, 1, False),
    (6, 40, 4000, True),
    (7, 500, 500, False),
]


# --------------------------------------------------------------------------- PPI++ vs ppi_py


@pytest.mark.parametrize(("seed", "n", "big_n", "hard"), CASES)
def test_ppi_mean_ci_matches_ppi_py(seed, n, big_n, hard):
    y, yhat, yhat_u = _cell(np.random.default_rng(seed), n, big_n, hard=hard)
    est = ppi_mean_ci(y, yhat, yhat_u, alpha=0.05)
    low, high = _bounds(ppi_py.ppi_mean_ci(y, yhat, yhat_u, alpha=0.05))
    assert est.method == "ppi"
    assert est.power_tuned
    assert est.ci_low == pytest.approx(low, abs=1e-9)
    assert est.ci_high == pytest.approx(high, abs=1e-9)
    point = float(np.ravel(ppi_py.ppi_mean_pointestimate(y, yhat, yhat_u))[0])
    assert est.value == pytest.approx(point, abs=1e-9)
    assert (est.n_labelled, est.n_unlabelled) == (n, big_n)
    assert 0.0 <= est.lam <= 1.0


@pytest.mark.parametrize("alpha", [0.01, 0.1, 0.32])
def test_ppi_alpha_uses_the_normal_quantile_of_ppi_py(alpha):
    y, yhat, yhat_u = _cell(np.random.default_rng(11), 60, 600)
    est = ppi_mean_ci(y, yhat, yhat_u, alpha=alpha)
    low, high = _bounds(ppi_py.ppi_mean_ci(y, yhat, yhat_u, alpha=alpha))
    assert (est.ci_low, est.ci_high) == pytest.approx((low, high), abs=1e-9)
    assert est.half_width == pytest.approx(sps.norm.ppf(1 - alpha / 2) * est.se, rel=1e-12)


@pytest.mark.parametrize("alpha", [1e-6, 0.01, 0.05, 0.1, 0.5, 0.9])
def test_z_quantile_is_scipys_normal_quantile(alpha):
    assert z_quantile(alpha) == sps.norm.ppf(1 - alpha / 2)


@pytest.mark.parametrize("lam", [0.0, 0.3, 1.0])
def test_ppi_fixed_lambda_matches_ppi_py(lam):
    y, yhat, yhat_u = _cell(np.random.default_rng(12), 80, 400)
    est = ppi_mean_ci(y, yhat, yhat_u, lam=lam)
    low, high = _bounds(ppi_py.ppi_mean_ci(y, yhat, yhat_u, alpha=0.05, lam=lam))
    assert (est.ci_low, est.ci_high) == pytest.approx((low, high), abs=1e-9)
    assert est.lam == lam
    assert not est.power_tuned


def test_ppi_lambda_formula():
    y, yhat, yhat_u = _cell(np.random.default_rng(13), 70, 300)
    n, big_n = y.size, yhat_u.size
    cov = np.mean((y - y.mean()) * (yhat - yhat.mean()))
    var = np.var(np.concatenate([yhat, yhat_u]), ddof=1)
    assert ppi_lambda(y, yhat, yhat_u) == pytest.approx(min(1, cov / ((1 + n / big_n) * var)), rel=1e-12)
    # anti-correlated predictions are clipped to 0: the estimate is then the classical mean
    assert ppi_lambda(y, 1 - yhat, 1 - yhat_u) == 0.0
    assert ppi_mean_ci(y, 1 - yhat, 1 - yhat_u).value == pytest.approx(y.mean())


def test_classical_matches_ppi_py():
    y, _, _ = _cell(np.random.default_rng(14), 90, 0)
    est = classical_mean_ci(y)
    low, high = _bounds(ppi_py.classical_mean_ci(y, alpha=0.05))
    assert est.method == "classical"
    assert (est.ci_low, est.ci_high) == pytest.approx((low, high), abs=1e-12)
    assert est.se == pytest.approx(y.std() / math.sqrt(y.size))


def test_ppi_with_no_information_reduces_to_classical():
    y, yhat, yhat_u = _cell(np.random.default_rng(15), 40, 200)
    classical = classical_mean_ci(y)
    constant = ppi_mean_ci(y, np.full_like(yhat, 0.7), np.full_like(yhat_u, 0.7))  # ppi_py: nan here
    everything_labelled = ppi_mean_ci(y, yhat, np.empty(0))
    for est in (constant, everything_labelled):
        assert est.lam == 0.0
        assert (est.value, est.ci_low, est.ci_high) == pytest.approx(
            (classical.value, classical.ci_low, classical.ci_high), abs=1e-12
        )


def test_ppi_good_scorer_is_narrower_than_humans_alone():
    y, yhat, yhat_u = _cell(np.random.default_rng(16), 100, 2000, slope=5.0)
    assert ppi_mean_ci(y, yhat, yhat_u).half_width < 0.8 * classical_mean_ci(y).half_width


# --------------------------------------------------------------------------- weighted human-only


def test_hajek_point_and_sandwich_variance():
    rng = np.random.default_rng(17)
    y = (rng.random(60) < 0.4).astype(float)
    pi = rng.uniform(0.05, 1.0, 60)
    est = classical_mean_ci(y, pi=pi)
    w = 1 / pi
    assert est.method == "hajek"
    assert est.value == pytest.approx(np.sum(w * y) / np.sum(w), rel=1e-12)
    # ppi_py's weighted classical interval has the same (Hajek) centre
    low, high = _bounds(ppi_py.classical_mean_ci(y, w=w, alpha=0.05))
    assert est.value == pytest.approx((low + high) / 2, rel=1e-12)
    # the linearised variance is the HC0 sandwich of an intercept-only weighted regression
    fit = sm.WLS(y, np.ones((y.size, 1)), weights=w).fit(cov_type="HC0")
    assert est.se == pytest.approx(float(fit.bse[0]), rel=1e-10)


def test_hajek_with_equal_probabilities_is_the_classical_interval():
    y = (np.random.default_rng(18).random(50) < 0.3).astype(float)
    a, b = classical_mean_ci(y), classical_mean_ci(y, pi=np.full(50, 0.2))
    assert (b.value, b.ci_low, b.ci_high) == pytest.approx((a.value, a.ci_low, a.ci_high), abs=1e-12)


# --------------------------------------------------------------------------- active inference


def _active_sample(seed, big_n=600, budget=120, slope=3.0):
    rng = np.random.default_rng(seed)
    f = expit(-0.3 + slope * rng.standard_normal(big_n))
    y_all = (rng.random(big_n) < f).astype(float)
    draw = sample_active(f, budget=budget, seed=seed)
    m = draw.selected
    return y_all, f, m, draw.inclusion_probabilities


def test_active_with_lam_one_is_the_papers_estimator():
    y_all, f, m, pi = _active_sample(19)
    est = active_mean_ci(y_all[m], f[m], f[~m], pi[m], lam=1.0)
    # Zrnic and Candes (2024), their code: mean and sd (divisor N) of Yhat + (Y - Yhat) xi / pi
    terms = f + (y_all - f) * m / pi
    assert est.value == pytest.approx(terms.mean(), rel=1e-12)
    assert est.se == pytest.approx(terms.std() / math.sqrt(f.size), rel=1e-12)
    assert est.ci_low == pytest.approx(terms.mean() - Z * terms.std() / math.sqrt(f.size), rel=1e-12)


def test_active_with_lam_zero_is_horvitz_thompson():
    y_all, f, m, pi = _active_sample(20)
    est = active_mean_ci(y_all[m], f[m], f[~m], pi[m], lam=0.0)
    assert est.value == pytest.approx(np.sum(y_all[m] / pi[m]) / f.size, rel=1e-12)


def test_active_power_tuning_minimises_the_estimated_variance():
    y_all, f, m, pi = _active_sample(21)
    tuned = active_mean_ci(y_all[m], f[m], f[~m], pi[m])
    assert tuned.power_tuned
    assert 0 < tuned.lam <= 1
    for lam in np.linspace(0, 1, 41):
        assert tuned.se <= active_mean_ci(y_all[m], f[m], f[~m], pi[m], lam=float(lam)).se + 1e-15


def test_active_with_every_item_labelled_is_the_classical_mean():
    y, yhat, _ = _cell(np.random.default_rng(22), 80, 0)
    est = active_mean_ci(y, yhat, np.empty(0), np.ones(80))
    low, high = _bounds(ppi_py.classical_mean_ci(y, alpha=0.05))
    assert (est.ci_low, est.ci_high) == pytest.approx((low, high), abs=1e-12)


# --------------------------------------------------------------------------- undefined and invalid


@pytest.mark.parametrize("n", [0, 1])
def test_too_few_labels_are_undefined(n):
    y, yhat, yhat_u = np.ones(n), np.ones(n), np.full(10, 0.5)
    results = [
        classical_mean_ci(y),
        classical_mean_ci(y, pi=np.full(n, 0.5)),
        ppi_mean_ci(y, yhat, yhat_u),
        active_mean_ci(y, yhat, yhat_u, np.full(n, 0.5)),
    ]
    for est in results:
        assert est.value is None
        assert est.ci_low is None
        assert est.se is None
        assert "label" in est.reason


def test_zero_variance_is_undefined_not_a_point_interval():
    y, yhat = np.zeros(20), np.zeros(20)
    for est in (
        classical_mean_ci(y),
        ppi_mean_ci(y, yhat, np.zeros(100)),
        ppi_mean_ci(y, yhat, np.r_[np.zeros(99), 1.0]),  # lam = 0: the labels alone, all 0
        active_mean_ci(y, yhat, np.zeros(100), np.full(20, 0.2)),
    ):
        assert est.value is None
        assert "zero estimated variance" in est.reason


def test_invalid_inputs_raise():
    with pytest.raises(StatsInputError):
        ppi_mean_ci([1.0, 0.0], [1.0], [0.5])
    with pytest.raises(StatsInputError):
        ppi_mean_ci([1.0, np.nan], [1.0, 0.0], [0.5])
    with pytest.raises(StatsInputError):
        classical_mean_ci([1.0, 0.0], pi=[0.5, 0.0])
    with pytest.raises(StatsInputError):
        active_mean_ci([1.0, 0.0], [1.0, 0.0], [0.5], [0.5, 1.5])
    with pytest.raises(StatsInputError):
        ppi_mean_ci([1.0, 0.0], [1.0, 0.0], [0.5], alpha=1.0)
    with pytest.raises(StatsInputError):
        MeanEstimate("ppi", None)


# --------------------------------------------------------------------------- coverage


def test_coverage_of_the_95_percent_intervals_by_seeded_simulation():
    """400 draws per estimator; nominal 0.95 has binomial sd sqrt(0.95 * 0.05 / 400) = 0.011, so a
    valid interval lands in [0.917, 0.983] (3 sd) except with probability 0.3%; the seed is fixed,
    so the test is deterministic and the tolerance says how much the figure could move."""
    rng = np.random.default_rng(2024)
    theta = float(np.mean(expit(-0.3 + 3.0 * np.random.default_rng(0).standard_normal(2_000_000))))
    big_n, n, draws = 1500, 150, 400
    covered = {"classical": 0, "ppi": 0, "active": 0}
    for d in range(draws):
        f = expit(-0.3 + 3.0 * rng.standard_normal(big_n))
        y = (rng.random(big_n) < f).astype(float)
        m = sample_uniform(big_n, n=n, seed=d).selected
        a = sample_active(f, budget=n, seed=10_000 + d)
        s = a.selected
        for name, est in (
            ("classical", classical_mean_ci(y[m])),
            ("ppi", ppi_mean_ci(y[m], f[m], f[~m])),
            ("active", active_mean_ci(y[s], f[s], f[~s], a.inclusion_probabilities[s])),
        ):
            covered[name] += est.ci_low <= theta <= est.ci_high
    for name, hits in covered.items():
        assert 0.917 <= hits / draws <= 0.983, (name, hits / draws)


def test_active_pi_sums_to_the_budget_in_the_coverage_design():
    f = expit(np.random.default_rng(1).standard_normal(1500) * 3)
    assert active_inclusion_probabilities(f, budget=150).sum() == pytest.approx(150)


# --------------------------------------------------------------------------- differences from control


def _estimate(value, se):
    return MeanEstimate("ppi", value, value - Z * se, value + Z * se, se, n_labelled=50)


def test_differences_from_control_wald_and_holm():
    estimates = [_estimate(0.30, 0.02), _estimate(0.38, 0.03), _estimate(0.31, 0.025), _estimate(0.22, 0.02)]
    diffs = differences_from_control(estimates, control=0)
    assert [d.group for d in diffs] == [1, 2, 3]
    se = math.sqrt(0.03**2 + 0.02**2)
    assert diffs[0].value == pytest.approx(0.08)
    assert diffs[0].se == pytest.approx(se)
    assert (diffs[0].ci_low, diffs[0].ci_high) == pytest.approx((0.08 - Z * se, 0.08 + Z * se))
    assert diffs[0].p_value == pytest.approx(2 * sps.norm.sf(0.08 / se))
    raw = [d.p_value for d in diffs]
    expected = multipletests(raw, method="holm")[1]
    assert [d.p_holm for d in diffs] == pytest.approx(expected.tolist())
    assert [d.reject for d in diffs] == (expected <= 0.05).tolist()


def test_differences_with_an_undefined_group_skip_it_in_holm():
    undefined = MeanEstimate("ppi", None, reason="no human labels")
    estimates = [_estimate(0.3, 0.02), undefined, _estimate(0.4, 0.03), _estimate(0.25, 0.02)]
    diffs = differences_from_control(estimates, control=0)
    assert diffs[0].value is None
    assert "no human labels" in diffs[0].reason
    defined = [d.p_value for d in diffs[1:]]
    assert [d.p_holm for d in diffs[1:]] == pytest.approx(multipletests(defined, method="holm")[1].tolist())
    every = differences_from_control([undefined, *estimates[2:]], control=0)
    assert all(d.value is None and "control group undefined" in d.reason for d in every)
    with pytest.raises(StatsInputError):
        differences_from_control(estimates, control=4)
