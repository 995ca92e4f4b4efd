"""Rates from few human labels and a scorer's predictions: classical, PPI++ and active estimators.

One call estimates one rate in one cell (model x group): the refusal rate, or one category's rate.
Inputs, all 1-d float arrays:

- `y`: the human final labels of the labelled items (1.0 = the outcome, 0.0 = not).
- `yhat`: the scorer's prediction for those same items, in the same order: its probability of
  the outcome (preferred) or a 0/1 call.
- `yhat_unlabelled`: its predictions on the cell's items without a human final label.
- `pi`: the inclusion probabilities of the labelled items under the plan that chose them
  (`annotations.stats.sampling`).

The target is the superpopulation rate: each output is an independent draw of the model's behaviour
on the group's prompts, as in PPI (Angelopoulos et al., Science 2023) and active inference (Zrnic
and Candes, ICML 2024). No finite-population correction is applied, so for the rate of the cell's
actual N outputs the intervals are conservative (by a factor up to sqrt(1 - n/N) on the
human-only variance). Intervals are Wald intervals estimate +/- z_{1-alpha/2} se with
z = scipy.special.ndtri(1 - alpha/2), the function behind scipy.stats.norm.ppf that ppi_py uses
(without its per-call overhead); they are not clipped to [0, 1].

An estimate that does not exist for the data (no labels, fewer than two, zero estimated variance,
where a Wald interval would be a point) is a `MeanEstimate` with `value=None` and a `reason`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import special

from annotations.stats.disparity import StatsInputError, holm_adjust

Method = Literal["classical", "hajek", "ppi", "active"]


@dataclass(frozen=True)
class MeanEstimate:
    """A rate with its standard error and Wald interval, or the reason it is undefined.

    `method`: "classical" (human labels, unweighted), "hajek" (human labels weighted by 1/pi),
    "ppi" (prediction-powered, PPI++) or "active" (inverse-probability-weighted, active inference).
    `lam` is the weight given to the predictions (0 = human labels only) and `power_tuned` whether
    it was estimated from the data. `n_labelled` / `n_unlabelled` count the items used.
    `value is None` exactly when `reason` says why; the interval and se are then None too.
    """

    method: Method
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    se: float | None = None
    n_labelled: int = 0
    n_unlabelled: int = 0
    lam: float | None = None
    power_tuned: bool = False
    reason: str | None = None

    def __post_init__(self) -> None:
        """Keep value and reason exclusive so an undefined result always says why."""
        if (self.value is None) == (self.reason is None):
            raise StatsInputError("a MeanEstimate has either a value or a reason, not both or neither")
        if self.value is not None and not math.isfinite(self.value):
            raise StatsInputError("a value must be finite: give a reason instead")

    @property
    def is_defined(self) -> bool:
        """Whether the estimate has a value."""
        return self.value is not None

    @property
    def half_width(self) -> float | None:
        """Half the interval's width, z se."""
        if self.ci_low is None or self.ci_high is None:
            return None
        return (self.ci_high - self.ci_low) / 2.0


def z_quantile(alpha: float) -> float:
    """z_{1-alpha/2} = ndtri(1 - alpha/2), identical to scipy.stats.norm.ppf, which ppi_py uses."""
    if not 0.0 < alpha < 1.0:
        raise StatsInputError(f"alpha must lie strictly between 0 and 1, got {alpha}")
    return float(special.ndtri(1.0 - alpha / 2.0))


def _vector(x: npt.ArrayLike, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if a.ndim != 1:
        raise StatsInputError(f"{name} must be a 1-d array, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise StatsInputError(f"{name} must be finite (no nan: leave unlabelled items out of y)")
    return a


def _paired(y: npt.ArrayLike, yhat: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    a, b = _vector(y, "y"), _vector(yhat, "yhat")
    if a.shape != b.shape:
        raise StatsInputError(f"y {a.shape} and yhat {b.shape} must pair the same labelled items")
    return a, b


def _probabilities(pi: npt.ArrayLike, n: int) -> np.ndarray:
    p = _vector(pi, "pi")
    if p.size != n:
        raise StatsInputError(f"pi needs one inclusion probability per labelled item ({n}), got {p.size}")
    if np.any(p <= 0) or np.any(p > 1):
        raise StatsInputError("inclusion probabilities must lie in (0, 1]")
    return p


def _undefined_reason(n_labelled: int) -> str | None:
    if n_labelled == 0:
        return "no human labels"
    if n_labelled < 2:
        return "fewer than two human labels: no variance estimate"
    return None


MIN_LABELS_PER_CELL = 80
MIN_EXPECTED_PER_CELL = 10.0


def too_few_labels_reason(
    n_labelled: int,
    *,
    minimum: int = MIN_LABELS_PER_CELL,
    predicted_rate: float | None = None,
    min_expected: float = MIN_EXPECTED_PER_CELL,
) -> str | None:
    """Why no interval is shown for a cell with `n_labelled` human labels, or None when there are enough.

    Every interval here is a Wald interval, and with few labels a Wald interval for a rate falls
    short of its level. bench/bench_ppi.py, no minimum, 1,000 draws, 24 cells with refusal rates
    0.02-0.41: on the study-sized campaign (840-1,008 outputs a cell) the human-only, PPI++ and active
    intervals covered 0.929-0.942 at 25-60 labels per cell, 0.944-0.951 at 80 and 0.947-0.956 at
    100 (the finite cells make them conservative as n/N grows); with cells ten times larger and the
    minimum applied, 0.930-0.946 at 100, 0.937-0.942 at 150, 0.938-0.945 at 200 and 0.945-0.954 from
    300. The shortfall comes from the cells with a rare outcome (single cells 0.88-0.93 at a 2% rate:
    Brown, Cai and DasGupta, Statistical Science 2001, on the Wald interval near 0 and 1), so the
    minimum removes the worst cases without making small rates safe; docs/researchers.md says so.
    It does not look at the labels' values: a rule such as "at least 10 with the outcome and 10
    without" keeps the samples whose rate came out high and so biases what is shown (measured:
    coverage 0.93 of the intervals it let through at 25 labels per cell). The estimators do not
    apply it, so they stay equal to ppi_py; the platform applies it to every method alike
    (settings.AUDIT_MACHINE_ASSISTED_MIN_LABELS, default MIN_LABELS_PER_CELL).

    The second rule, for rare rates, reads the scorer instead of the labels: `predicted_rate` is the
    scorer's mean prediction over the whole cell (fixed before any draw), and an interval is shown
    only when n x min(rate, 1 - rate) >= `min_expected` (settings.AUDIT_MACHINE_ASSISTED_MIN_EXPECTED,
    default MIN_EXPECTED_PER_CELL = 10, the textbook np >= 10 for a normal approximation). Measured on
    the ten-times-study campaign with a calibrated scorer (bench_ppi --outputs 215040): PPI++ coverage
    0.930/0.937/0.938 at 100/150/200 labels per cell without it, 0.939/0.943/0.940 with it. It is only
    as good as the scorer's rate: an overconfident scorer that flags 12% of a 2% cell lets the cell
    through (the bench's shifted scorer: 0.934-0.945 at 100-200), so docs/researchers.md still says
    to read rare cells' intervals as approximate.
    """
    if n_labelled < minimum:
        return f"{n_labelled} human labels in this cell; intervals are shown from {minimum}"
    if predicted_rate is None or not min_expected:
        return None
    rarer = min(predicted_rate, 1.0 - predicted_rate)
    expected = n_labelled * rarer
    if expected >= min_expected:
        return None
    which = "with" if predicted_rate <= 0.5 else "without"
    return (
        f"the scorer puts the rate near {predicted_rate:.1%}, so about {expected:.1f} of the {n_labelled} "
        f"human labels are expected {which} the outcome; intervals are shown from {min_expected:g}"
    )


def _result(
    method: Method,
    value: float,
    se: float,
    alpha: float,
    *,
    n_labelled: int,
    n_unlabelled: int,
    lam: float | None,
    power_tuned: bool = False,
) -> MeanEstimate:
    """The Wald interval value +/- z se, or undefined when se is 0 (a degenerate interval)."""
    common = {
        "n_labelled": n_labelled,
        "n_unlabelled": n_unlabelled,
        "lam": lam,
        "power_tuned": power_tuned,
    }
    if not se > 0:
        return MeanEstimate(
            method,
            None,
            reason="zero estimated variance (every term equal): the normal interval would be a point",
            **common,
        )
    z = z_quantile(alpha)
    return MeanEstimate(method, value, value - z * se, value + z * se, se, **common)


# --------------------------------------------------------------------------- human labels only


def classical_mean_ci(
    y: npt.ArrayLike, *, pi: npt.ArrayLike | None = None, alpha: float = 0.05
) -> MeanEstimate:
    """Human-only rate: the sample mean, or the Hajek estimator when inclusion probabilities differ.

    Unweighted (`pi` None, uniform or within one stratum): mean(y) with se = sd(y) / sqrt(n),
    sd with divisor n, as ppi_py.classical_mean_ci.
    Weighted (w_i = 1 / pi_i): the Hajek ratio mu = sum w y / sum w (Hajek 1971; Sarndal, Swensson
    and Wretman 1992, sec. 5.7) with the linearised superpopulation variance
    se^2 = sum w^2 (y - mu)^2 / (sum w)^2, the HC0 sandwich of a weighted mean; equal weights give
    the unweighted formula exactly. (ppi_py's weighted classical interval uses sd(w y) instead,
    which is not invariant to shifting y.)
    """
    values = _vector(y, "y")
    n = values.size
    weights = None if pi is None else 1.0 / _probabilities(pi, n)
    method: Method = "classical" if weights is None else "hajek"
    reason = _undefined_reason(n)
    if reason:
        return MeanEstimate(method, None, n_labelled=n, lam=0.0, reason=reason)
    if weights is None:
        mu = float(values.mean())
        se = float(values.std() / math.sqrt(n))
    else:
        mu = float(np.sum(weights * values) / weights.sum())
        se = float(math.sqrt(np.sum(weights**2 * (values - mu) ** 2)) / weights.sum())
    return _result(method, mu, se, alpha, n_labelled=n, n_unlabelled=0, lam=0.0)


# --------------------------------------------------------------------------- PPI++


def ppi_lambda(y: npt.ArrayLike, yhat: npt.ArrayLike, yhat_unlabelled: npt.ArrayLike) -> float:
    """PPI++ power-tuning weight for a mean (Angelopoulos, Duchi and Zrnic 2023, arXiv 2311.01453).

    lam = Cov(Y, Yhat) / ((1 + n/N) Var(Yhat)), clipped to [0, 1], with Cov over the n labelled
    items (divisor n) and Var over all n + N predictions (divisor n + N - 1), exactly as
    ppi_py's `_calc_lam_glm(..., clip=True)`. When every prediction is equal the predictions
    carry no information and lam = 0 (ppi_py gives nan there); with N = 0, lam = 0.
    """
    a, b = _paired(y, yhat)
    c = _vector(yhat_unlabelled, "yhat_unlabelled")
    n, big_n = a.size, c.size
    if n == 0 or big_n == 0:
        return 0.0
    pooled = np.concatenate([b, c])
    var = float(np.var(pooled, ddof=1)) if pooled.size > 1 else 0.0
    if var <= 0:
        return 0.0
    cov = float(np.mean((a - a.mean()) * (b - b.mean())))
    return float(np.clip(cov / ((1.0 + n / big_n) * var), 0.0, 1.0))


def ppi_mean_ci(
    y: npt.ArrayLike,
    yhat: npt.ArrayLike,
    yhat_unlabelled: npt.ArrayLike,
    *,
    alpha: float = 0.05,
    lam: float | None = None,
) -> MeanEstimate:
    """Prediction-powered rate with PPI++ power tuning; equals ppi_py.ppi_mean_ci (lam=None).

    theta = lam mean(Yhat_unlabelled) + mean(Y - lam Yhat)  (Angelopoulos et al., Science 2023;
    PPI++: Angelopoulos, Duchi and Zrnic 2023), lam from `ppi_lambda` unless given (lam = 1 is
    plain PPI, lam = 0 the classical mean).
    se^2 = sd(lam Yhat_unlabelled)^2 / N + sd(Y - lam Yhat)^2 / n, sd with divisor n (resp. N).
    With N = 0 (every item labelled) lam is 0 and the result is the classical mean.
    """
    a, b = _paired(y, yhat)
    c = _vector(yhat_unlabelled, "yhat_unlabelled")
    n, big_n = a.size, c.size
    tuned = lam is None and big_n > 0
    if lam is None or big_n == 0:
        lam = ppi_lambda(a, b, c) if n and big_n else 0.0
    elif not math.isfinite(lam):
        raise StatsInputError("lam must be finite")
    reason = _undefined_reason(n)
    if reason:
        return MeanEstimate("ppi", None, n_labelled=n, n_unlabelled=big_n, lam=lam, reason=reason)
    rectifier = a - lam * b
    value = float(rectifier.mean())
    var = float(rectifier.var()) / n
    if big_n:
        value += float(lam * c.mean())
        var += float((lam * c).var()) / big_n
    return _result(
        "ppi", value, math.sqrt(var), alpha, n_labelled=n, n_unlabelled=big_n, lam=lam, power_tuned=tuned
    )


# --------------------------------------------------------------------------- active inference


def active_mean_ci(
    y: npt.ArrayLike,
    yhat: npt.ArrayLike,
    yhat_unlabelled: npt.ArrayLike,
    pi: npt.ArrayLike,
    *,
    alpha: float = 0.05,
    lam: float | None = None,
) -> MeanEstimate:
    """Active-inference rate: inverse-probability-weighted PPI (Zrnic and Candes, ICML 2024).

    Over all N items of the cell, xi_i = 1 when item i was labelled (drawn with probability pi_i,
    Poisson sampling), f_i the prediction:
    T_i = lam f_i + (Y_i - lam f_i) xi_i / pi_i,  theta = mean(T),  se = sd(T) / sqrt(N)
    (sd with divisor N, as in the paper's code); T_i = lam f_i for an unlabelled item, so only the
    labelled items' pi is needed. lam = 1 is the paper's estimator, lam = 0 Horvitz-Thompson.
    Power tuning (the paper's sec. 4, "power tuning"): T = A + lam B with A_i = xi_i Y_i / pi_i and
    B_i = f_i (1 - xi_i / pi_i); lam = -Cov(A, B) / Var(B), clipped to [0, 1], minimises the
    estimated variance Var(T) (lam = 0 when Var(B) = 0). With pi = 1 everywhere T_i = Y_i and the
    result is the classical mean.
    """
    a, b = _paired(y, yhat)
    c = _vector(yhat_unlabelled, "yhat_unlabelled")
    p = _probabilities(pi, a.size)
    n, big_n = a.size, c.size
    total = n + big_n
    tuned = lam is None
    if lam is not None and not math.isfinite(lam):
        raise StatsInputError("lam must be finite")
    reason = _undefined_reason(n)
    if reason:
        return MeanEstimate("active", None, n_labelled=n, n_unlabelled=big_n, lam=lam, reason=reason)
    ipw = np.concatenate([a / p, np.zeros(big_n)])
    correction = np.concatenate([b * (1.0 - 1.0 / p), c])
    if lam is None:
        var_b = float(correction.var())
        lam = 0.0 if var_b <= 0 else float(np.clip(-np.cov(ipw, correction, ddof=0)[0, 1] / var_b, 0.0, 1.0))
    terms = ipw + lam * correction
    value = float(terms.mean())
    se = float(terms.std() / math.sqrt(total))
    return _result("active", value, se, alpha, n_labelled=n, n_unlabelled=big_n, lam=lam, power_tuned=tuned)


# --------------------------------------------------------------------------- group differences


@dataclass(frozen=True)
class GroupDifference:
    """One group's rate minus the control group's, with a Wald interval and Holm-adjusted p-value.

    d = theta_g - theta_c, se = sqrt(se_g^2 + se_c^2) (the cells share no item and are drawn
    independently), interval d +/- z se, p = 2 (1 - Phi(|d| / se)); `p_holm` is Holm-adjusted
    (Holm 1979) over the defined comparisons of one call with `disparity.holm_adjust`, which the
    tests check against statsmodels' multipletests (whose Holm branch runs gc.collect() on every
    call: 0.1-0.2 s in a process with many objects); `reject` at alpha. Undefined (value None,
    with the reason) when either rate is.
    """

    group: int
    control: int
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    se: float | None = None
    p_value: float | None = None
    p_holm: float | None = None
    reject: bool | None = None
    reason: str | None = None


def differences_from_control(
    estimates: Sequence[MeanEstimate], *, control: int, alpha: float = 0.05
) -> tuple[GroupDifference, ...]:
    """Every group's difference from `control` (an index into `estimates`), Holm across groups."""
    if not 0 <= control < len(estimates):
        raise StatsInputError(f"control must index one of the {len(estimates)} estimates")
    z = z_quantile(alpha)
    base = estimates[control]
    out: list[GroupDifference] = []
    for g, est in enumerate(estimates):
        if g == control:
            continue
        if base.value is None or base.se is None:
            out.append(GroupDifference(g, control, None, reason=f"control group undefined: {base.reason}"))
        elif est.value is None or est.se is None:
            out.append(GroupDifference(g, control, None, reason=f"group undefined: {est.reason}"))
        else:
            d = est.value - base.value
            se = math.hypot(est.se, base.se)
            p = float(2.0 * special.ndtr(-abs(d) / se))
            out.append(GroupDifference(g, control, d, d - z * se, d + z * se, se, p))
    adjusted = holm_adjust([np.nan if diff.p_value is None else diff.p_value for diff in out])
    return tuple(
        diff if diff.p_value is None else replace(diff, p_holm=float(p), reject=bool(p <= alpha))
        for diff, p in zip(out, adjusted.tolist(), strict=True)
    )
