"""The label planner: textbook sample sizes, PPI++'s closed form, and the planned n checked by simulation."""

import math

import numpy as np
import pytest
from scipy import stats as sps
from scipy.special import expit

from annotations.stats import (
    active_mean_ci,
    labels_needed_active,
    labels_needed_classical,
    labels_needed_ppi,
    plan_labels,
    ppi_mean_ci,
    sample_active,
    sample_uniform,
)

Z = sps.norm.ppf(0.975)


def _population(rng, big_n, slope=3.0, shift=-0.3):
    f = expit(shift + slope * rng.standard_normal(big_n))
    return f, (rng.random(big_n) < f).astype(float)


def test_classical_textbook_sample_size():
    # n = z^2 p (1 - p) / h^2 = 1.96^2 / 4 / 0.03^2 = 1067.1 -> 1068 for +/-3 points at p = 0.5
    plan = labels_needed_classical(p=0.5, half_width=0.03, n_items=5000)
    assert plan.n == 1068
    assert plan.half_width <= 0.03
    assert labels_needed_classical(p=0.2, half_width=0.05, n_items=5000).n == math.ceil(Z**2 * 0.16 / 0.0025)


def test_classical_unreachable_and_degenerate():
    plan = labels_needed_classical(p=0.5, half_width=0.03, n_items=500)
    assert plan.n is None
    assert "all 500 items" in plan.reason
    assert plan.half_width == pytest.approx(Z * math.sqrt(0.25 / 500))
    assert labels_needed_classical(p=0.0, half_width=0.03, n_items=500).n is None


def test_ppi_matches_the_closed_form_when_lambda_is_interior():
    rng = np.random.default_rng(1)
    f, y = _population(rng, 20_000)
    pilot = rng.choice(f.size, 400, replace=False)
    plan = labels_needed_ppi(y_pilot=y[pilot], yhat_pilot=f[pilot], yhat_cell=f, half_width=0.02)
    s2 = y[pilot].var()
    cov = np.mean((y[pilot] - y[pilot].mean()) * (f[pilot] - f[pilot].mean()))
    rho2 = cov**2 / (s2 * f.var())
    # V(n) = s2 (1 - rho^2) / n + rho^2 s2 / N  =>  n = s2 (1 - rho^2) / (h^2 / z^2 - rho^2 s2 / N)
    closed = s2 * (1 - rho2) / (0.02**2 / Z**2 - rho2 * s2 / f.size)
    assert plan.n == math.ceil(closed - 1e-9)
    assert 0 < plan.lam < 1
    classical = labels_needed_classical(p=y[pilot].mean(), half_width=0.02, n_items=f.size)
    assert plan.n < 0.7 * classical.n


def test_ppi_with_useless_predictions_needs_the_human_only_n():
    rng = np.random.default_rng(2)
    y = (rng.random(300) < 0.4).astype(float)
    yhat = 1 - y  # anti-correlated: lam clipped to 0
    plan = labels_needed_ppi(y_pilot=y, yhat_pilot=yhat, yhat_cell=rng.random(10_000), half_width=0.03)
    assert plan.lam == 0
    assert plan.n == labels_needed_classical(p=y.mean(), half_width=0.03, n_items=10_000).n


def test_planned_n_gives_the_target_half_width_in_simulation():
    """The planned n, used on fresh cells of the same kind, gives a mean half-width within 5% of the
    target (pilot of 1000 labels, 200 draws: the mean half-width's own sd is well under 1%)."""
    rng = np.random.default_rng(3)
    big_n, target = 3000, 0.03
    f, y = _population(rng, big_n)
    pilot = rng.choice(big_n, 1000, replace=False)
    plan = plan_labels(
        y_pilot=y[pilot],
        pilot_items=pilot,
        yhat_cell=f,
        half_width=target,
        category_probs=np.stack([1 - f, f], 1),
    )
    assert plan.active.n < plan.ppi.n < plan.classical.n
    ppi_widths, active_widths = [], []
    for d in range(200):
        f, y = _population(rng, big_n)
        m = sample_uniform(big_n, n=plan.ppi.n, seed=d).selected
        ppi_widths.append(ppi_mean_ci(y[m], f[m], f[~m]).half_width)
        a = sample_active(f, budget=plan.active.n, uniform_share=plan.active.uniform_share, seed=d)
        s = a.selected
        active_widths.append(active_mean_ci(y[s], f[s], f[~s], a.inclusion_probabilities[s]).half_width)
    assert np.mean(ppi_widths) == pytest.approx(target, rel=0.05)
    assert np.mean(active_widths) == pytest.approx(target, rel=0.05)


def test_active_tuned_uniform_share_is_never_worse_than_a_fixed_one():
    rng = np.random.default_rng(4)
    f, y = _population(rng, 2000, slope=4.0)
    pilot = rng.choice(2000, 300, replace=False)
    common = {
        "y_pilot": y[pilot],
        "pilot_items": pilot,
        "yhat_cell": f,
        "category_probs": f,
        "half_width": 0.03,
    }
    tuned = labels_needed_active(**common, uniform_share=None)
    for tau in (0.05, 0.2, 0.5, 1.0):
        assert tuned.n <= labels_needed_active(**common, uniform_share=tau).n
    assert tuned.uniform_share in np.round(np.arange(0.05, 1.0001, 0.05), 2)


def test_planner_undefined_cases():
    f = np.linspace(0.01, 0.99, 100)
    one = plan_labels(y_pilot=[1.0], pilot_items=[3], yhat_cell=f, half_width=0.05, category_probs=f)
    assert one.ppi.n is None
    assert one.active.n is None
    assert "fewer than two" in one.ppi.reason
    same = plan_labels(y_pilot=np.zeros(10), pilot_items=np.arange(10), yhat_cell=f, half_width=0.05)
    assert same.classical.n is None
    assert "all equal" in same.ppi.reason
    assert same.active is None
    far = labels_needed_ppi(y_pilot=[0.0, 1.0] * 20, yhat_pilot=[0.5] * 40, yhat_cell=f, half_width=0.01)
    assert far.n is None
    assert "wider than the target" in far.reason
