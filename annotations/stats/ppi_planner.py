"""How many human labels a cell (model x group) needs for a target interval half-width h.

Given a pilot of human labels in the cell (a uniform sample of its N outputs) and the scorer's
predictions on every output of the cell, each planner predicts the variance V(n) of the matching
estimator in `annotations.stats.ppi` at n labels and returns the smallest n with z V(n)^(1/2) <= h,
z = z_{1-alpha/2}. The variances are plug-in estimates from the pilot, so a small pilot gives a
rough plan; n counts every label the cell's estimate rests on (a uniform pilot's labels among them).

Like the estimators, the planners use no finite-population correction (the superpopulation
variances of `annotations.stats.ppi`): n is capped at the cell size N, and a target that even N
labels cannot reach is undefined with the reason and the half-width that N labels would give.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from annotations.stats.disparity import StatsInputError
from annotations.stats.ppi import _paired, _vector, z_quantile
from annotations.stats.sampling import UncertaintyRule, active_inclusion_probabilities

UNIFORM_SHARES = tuple(np.round(np.arange(0.05, 1.0001, 0.05), 2).tolist())


@dataclass(frozen=True)
class LabelsNeeded:
    """Labels needed for a half-width, or why the target is out of reach.

    `n` is the number of human labels (the expected number under active sampling); `half_width`
    the predicted half-width z sqrt(V(n)) at that n, or at n = N when the target is unreachable.
    `lam` is the predictions' weight at n; `uniform_share` the active plan's floor share.
    `n is None` exactly when `reason` says why.
    """

    method: Literal["classical", "ppi", "active"]
    n: int | None
    half_width: float | None
    n_items: int
    lam: float | None = None
    uniform_share: float | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        """Keep n and reason exclusive so an undefined plan always says why."""
        if (self.n is None) == (self.reason is None):
            raise StatsInputError("a LabelsNeeded has either n or a reason, not both or neither")


def _check_target(half_width: float, n_items: int) -> None:
    if not half_width > 0:
        raise StatsInputError("half_width must be positive")
    if not isinstance(n_items, (int, np.integer)) or n_items < 1:
        raise StatsInputError("the cell needs at least one item")


def _first_reaching(variances: np.ndarray, ns: np.ndarray, z: float, h: float) -> int | None:
    ok = np.flatnonzero(z * np.sqrt(variances) <= h)
    return int(ns[ok[0]]) if ok.size else None


def _unreachable(
    method: Literal["classical", "ppi", "active"], z: float, var_all: float, n_items: int, h: float
) -> LabelsNeeded:
    best = z * math.sqrt(var_all)
    return LabelsNeeded(
        method,
        None,
        best,
        n_items,
        reason=f"labelling all {n_items} items gives +/-{best:.4f}, wider than the target +/-{h:.4f}",
    )


def labels_needed_classical(
    *, p: float, half_width: float, n_items: int, alpha: float = 0.05
) -> LabelsNeeded:
    """Human labels only: n = ceil(z^2 p (1 - p) / h^2) (the Wald interval), capped at N.

    Use the pilot's rate for p, or p = 0.5 for the worst case. No finite-population correction
    (with it, Cochran's n / (1 + n / N) would suffice for the rate of the N outputs themselves).
    """
    _check_target(half_width, n_items)
    if not 0.0 <= p <= 1.0:
        raise StatsInputError("p must lie in [0, 1]")
    z = z_quantile(alpha)
    var = p * (1.0 - p)
    if var == 0:
        return LabelsNeeded(
            "classical",
            None,
            None,
            n_items,
            lam=0.0,
            reason="p is 0 or 1: no variance to plan with (plan with p = 0.5 for the worst case)",
        )
    n = max(2, math.ceil(z * z * var / half_width**2 - 1e-12))
    if n > n_items:
        return _unreachable("classical", z, var / n_items, n_items, half_width)
    return LabelsNeeded("classical", n, z * math.sqrt(var / n), n_items, lam=0.0)


def labels_needed_ppi(
    *,
    y_pilot: npt.ArrayLike,
    yhat_pilot: npt.ArrayLike,
    yhat_cell: npt.ArrayLike,
    half_width: float,
    alpha: float = 0.05,
) -> LabelsNeeded:
    """PPI++ with n labels and N - n unlabelled items, from the pilot's moments.

    With s2 = Var(Y) and C = Cov(Y, Yhat) on the pilot and v = Var(Yhat) on all N predictions,
    PPI++ at n labels has (Angelopoulos, Duchi and Zrnic 2023, the mean case)
    lam(n) = clip(C / ((1 + n / (N - n)) v), 0, 1) and
    V(n) = (s2 - 2 lam C + lam^2 v) / n + lam^2 v / (N - n);
    without clipping V(n) = s2 (1 - rho^2) / n + rho^2 s2 / N, rho the correlation of Y and Yhat.
    Every n = 2..N is evaluated (V need not be monotone once lam is clipped) and the smallest
    reaching the target returned.
    """
    y, f = _paired(y_pilot, yhat_pilot)
    cell = _vector(yhat_cell, "yhat_cell")
    big_n = cell.size
    _check_target(half_width, big_n)
    if y.size < 2:
        return LabelsNeeded("ppi", None, None, big_n, reason="the pilot has fewer than two labels")
    z = z_quantile(alpha)
    s2 = float(y.var())
    if s2 == 0:
        return LabelsNeeded(
            "ppi", None, None, big_n, reason="the pilot's labels are all equal: no variance to plan with"
        )
    cov = float(np.mean((y - y.mean()) * (f - f.mean())))
    v = float(cell.var())
    ns = np.arange(2, big_n + 1, dtype=float)
    rest = big_n - ns
    lam = np.clip(cov * rest / (big_n * v), 0.0, 1.0) if v > 0 else np.zeros_like(ns)
    # at n = N, lam = 0: no unlabelled items, no imputed term
    variances = (s2 - 2 * lam * cov + lam**2 * v) / ns + lam**2 * v / np.maximum(rest, 1.0)
    n = _first_reaching(variances, ns, z, half_width)
    if n is None:
        return _unreachable("ppi", z, s2 / big_n, big_n, half_width)
    i = n - 2
    return LabelsNeeded("ppi", n, z * math.sqrt(variances[i]), big_n, lam=float(lam[i]))


def _active_variance(
    budget: float,
    *,
    y: np.ndarray,
    f_pilot: np.ndarray,
    pilot_items: np.ndarray,
    probs: np.ndarray,
    s2: float,
    uniform_share: float,
    rule: UncertaintyRule,
) -> tuple[float, float]:
    """Predicted Var(theta) of the power-tuned active estimator at an expected `budget`, and lam."""
    big_n = probs.shape[0]
    pi = active_inclusion_probabilities(probs, budget=budget, uniform_share=uniform_share, rule=rule)
    a = 1.0 / pi[pilot_items] - 1.0
    denom = float(np.mean(f_pilot**2 * a))
    lam = 0.0 if denom <= 0 else float(np.clip(np.mean(y * f_pilot * a) / denom, 0.0, 1.0))
    return (s2 + float(np.mean((y - lam * f_pilot) ** 2 * a))) / big_n, lam


def labels_needed_active(
    *,
    y_pilot: npt.ArrayLike,
    pilot_items: npt.ArrayLike,
    yhat_cell: npt.ArrayLike,
    category_probs: npt.ArrayLike,
    half_width: float,
    alpha: float = 0.05,
    uniform_share: float | None = 0.2,
    rule: UncertaintyRule = "sqrt_variance",
) -> LabelsNeeded:
    """Expected labels for the active estimator, from the pilot's errors under the active pi.

    Var(theta) = (Var(Y) + E[(Y - lam f)^2 (1/pi(X) - 1)]) / N (Zrnic and Candes 2024, the mean
    case: E[T | X, Y] = Y and Var(T | X, Y) = (Y - lam f)^2 (1 - pi) / pi), with pi the active
    probabilities for an expected budget B (`active_inclusion_probabilities` on the cell's
    category probabilities) and lam = clip(E[Y f a] / E[f^2 a], 0, 1), a = 1/pi - 1, its
    minimiser. Expectations are pilot means (the pilot is a uniform sample of the cell:
    `pilot_items` are its positions in the cell, `y_pilot` their labels, `yhat_cell[i]` the
    prediction f_i of the rate's outcome). V decreases in B, so B is found by bisection over 1..N.
    `uniform_share=None` picks the floor share on a grid (0.05, 0.10, ..., 1) that needs the fewest
    labels, as the paper tunes tau on held-out data.
    """
    y = _vector(y_pilot, "y_pilot")
    f = _vector(yhat_cell, "yhat_cell")
    probs = np.asarray(category_probs, dtype=float)
    big_n = f.size
    _check_target(half_width, big_n)
    items = np.asarray(pilot_items)
    if items.shape != y.shape or (items.size and not np.issubdtype(items.dtype, np.integer)):
        raise StatsInputError("pilot_items must give one cell position per pilot label")
    if items.size and (items.min() < 0 or items.max() >= big_n or np.unique(items).size != items.size):
        raise StatsInputError("pilot_items must be distinct positions in the cell")
    if probs.shape[0] != big_n:
        raise StatsInputError("category_probs and yhat_cell must have one row per item of the cell")
    if y.size < 2:
        return LabelsNeeded("active", None, None, big_n, reason="the pilot has fewer than two labels")
    s2 = float(y.var())
    if s2 == 0:
        return LabelsNeeded(
            "active", None, None, big_n, reason="the pilot's labels are all equal: no variance to plan with"
        )
    z = z_quantile(alpha)
    shares = UNIFORM_SHARES if uniform_share is None else (uniform_share,)
    plans = []
    for tau in shares:
        kwargs = {
            "y": y,
            "f_pilot": f[items],
            "pilot_items": items,
            "probs": probs,
            "s2": s2,
            "uniform_share": tau,
            "rule": rule,
        }
        if z * math.sqrt(_active_variance(big_n, **kwargs)[0]) > half_width:
            return _unreachable("active", z, s2 / big_n, big_n, half_width)
        low, high = 1, big_n  # V(high) reaches the target; find the smallest such budget
        while low < high:
            mid = (low + high) // 2
            if z * math.sqrt(_active_variance(mid, **kwargs)[0]) <= half_width:
                high = mid
            else:
                low = mid + 1
        var, lam = _active_variance(high, **kwargs)
        plans.append(LabelsNeeded("active", high, z * math.sqrt(var), big_n, lam=lam, uniform_share=tau))
    return min(plans, key=lambda plan: (plan.n, -(plan.uniform_share or 0.0)))


@dataclass(frozen=True)
class LabelPlan:
    """Labels needed in one cell for one half-width: human only, PPI++ and active."""

    classical: LabelsNeeded
    ppi: LabelsNeeded
    active: LabelsNeeded | None


def plan_labels(
    *,
    y_pilot: npt.ArrayLike,
    pilot_items: npt.ArrayLike,
    yhat_cell: npt.ArrayLike,
    half_width: float,
    category_probs: npt.ArrayLike | None = None,
    alpha: float = 0.05,
    uniform_share: float | None = 0.2,
    rule: UncertaintyRule = "sqrt_variance",
) -> LabelPlan:
    """The three plans for one cell from one pilot (active only when category probabilities are given).

    Human-only plans with the pilot's rate p = mean(y_pilot); PPI with the pilot's predictions
    yhat_cell[pilot_items]; see `labels_needed_classical`, `labels_needed_ppi`, `labels_needed_active`.
    """
    y = _vector(y_pilot, "y_pilot")
    f = _vector(yhat_cell, "yhat_cell")
    items = np.asarray(pilot_items)
    if items.shape != y.shape:
        raise StatsInputError("pilot_items must give one cell position per pilot label")
    if y.size == 0:
        classical = LabelsNeeded("classical", None, None, f.size, reason="the pilot has no labels")
    else:
        classical = labels_needed_classical(
            p=float(y.mean()), half_width=half_width, n_items=f.size, alpha=alpha
        )
    ppi = labels_needed_ppi(y_pilot=y, yhat_pilot=f[items], yhat_cell=f, half_width=half_width, alpha=alpha)
    active = None
    if category_probs is not None:
        active = labels_needed_active(
            y_pilot=y,
            pilot_items=items,
            yhat_cell=f,
            category_probs=category_probs,
            half_width=half_width,
            alpha=alpha,
            uniform_share=uniform_share,
            rule=rule,
        )
    return LabelPlan(classical, ppi, active)
