"""Which outputs humans label: inclusion probabilities and seeded draws for a campaign's sampling plan.

Items are the outputs of a campaign in a stable order chosen by the caller (e.g. by primary key);
every array here is indexed in that order. A plan gives each item its inclusion probability
pi_i = P(item i is drawn), which the estimators in `annotations.stats.ppi` need, and draws the
items with a seeded `numpy.random.Generator` (PCG64):

- `sample_all`: every item, pi_i = 1 (today's campaigns).
- `sample_uniform`: a simple random sample without replacement of n items (or round(f N)),
  pi_i = n / N.
- `sample_stratified`: n items per cell (model x group), capped at the cell's size N_c, drawn
  without replacement inside each cell, pi_i = min(n, N_c) / N_c.
- `sample_active`: Poisson sampling (independent Bernoulli(pi_i) draws, as in Zrnic and Candes
  2024, "Active Statistical Inference", ICML) with pi_i growing with the scorer's uncertainty,
  mixed with a uniform floor and scaled so that sum_i pi_i = budget (see
  `active_inclusion_probabilities`). The number of labels is random, with expectation `budget`.

Draws use only `Generator.random()`: a draw without replacement takes the n items with the
smallest uniform keys (a random permutation), Poisson sampling keeps item i when its key is below
pi_i. The same seed and the same item order give the same draw with the locked numpy; the seed a
draw used is kept on the result (a fresh one is chosen and recorded when none is given).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from annotations.stats.disparity import StatsInputError

Design = Literal["all", "uniform", "stratified", "active"]
UncertaintyRule = Literal["sqrt_variance", "least_confidence"]


@dataclass(frozen=True)
class Stratum:
    """One cell of a plan: its id, its size N_c, the expected number drawn and the mean pi in it.

    For a stratified plan `expected_n` = n_c = min(n, N_c) exactly and every item of the cell has
    pi = `probability` = n_c / N_c; for an active plan split by cell, `expected_n` = sum of the
    cell's pi and `probability` their mean.
    """

    cell: int
    size: int
    expected_n: float
    probability: float


@dataclass(frozen=True)
class SampleDraw:
    """A drawn sample: per-item inclusion probabilities and the selection, both in item order.

    `inclusion_probabilities[i]` is pi_i; `selected[i]` says whether item i was drawn.
    `expected_size` = sum_i pi_i (equal to `size` for the fixed-size designs).
    `strata` lists the cells of a stratified draw (and of an active draw split by cell).
    Both arrays are read-only.
    """

    design: Design
    inclusion_probabilities: np.ndarray
    selected: np.ndarray
    seed: int | None
    expected_size: float
    strata: tuple[Stratum, ...] = ()

    @property
    def size(self) -> int:
        """Number of items drawn."""
        return int(self.selected.sum())

    @property
    def indices(self) -> np.ndarray:
        """Positions of the drawn items, ascending."""
        return np.flatnonzero(self.selected)


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


def _rng(seed: int | None) -> tuple[np.random.Generator, int]:
    """A PCG64 generator and the seed it was built from (a fresh recorded one when seed is None)."""
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(2, dtype=np.uint32).view(np.uint64)[0] >> 1)
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise StatsInputError("seed must be a non-negative integer")
    return np.random.Generator(np.random.PCG64(int(seed))), int(seed)


def _n_items(n_items: int) -> int:
    if not isinstance(n_items, (int, np.integer)) or n_items < 0:
        raise StatsInputError("n_items must be a non-negative whole number")
    return int(n_items)


def _draw_fixed_size(keys: np.ndarray, n: int) -> np.ndarray:
    """Mask of the n items with the smallest keys: a simple random sample without replacement."""
    mask = np.zeros(keys.size, dtype=bool)
    mask[np.argsort(keys, kind="stable")[:n]] = True
    return mask


# --------------------------------------------------------------------------- fixed-size designs


def sample_all(n_items: int) -> SampleDraw:
    """Every item, with pi_i = 1."""
    n = _n_items(n_items)
    return SampleDraw("all", _frozen(np.ones(n)), _frozen(np.ones(n, dtype=bool)), None, float(n))


def sample_uniform(
    n_items: int, *, n: int | None = None, fraction: float | None = None, seed: int | None = None
) -> SampleDraw:
    """Simple random sample without replacement of n items (or round(fraction * N)); pi_i = n / N.

    Exactly one of `n` and `fraction` is given; n is capped at N. round() is half-up.
    """
    size = _n_items(n_items)
    if (n is None) == (fraction is None):
        raise StatsInputError("give exactly one of n and fraction")
    if fraction is not None:
        if not 0.0 <= fraction <= 1.0:
            raise StatsInputError("fraction must lie in [0, 1]")
        n = int(np.floor(fraction * size + 0.5))
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise StatsInputError("n must be a non-negative whole number")
    n = min(int(n), size)
    rng, used = _rng(seed)
    selected = _draw_fixed_size(rng.random(size), n)
    pi = np.full(size, n / size if size else 0.0)
    return SampleDraw("uniform", _frozen(pi), _frozen(selected), used, float(n))


def _cell_codes(cells: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(cells)
    if c.ndim != 1 or (c.size and not np.issubdtype(c.dtype, np.integer)):
        raise StatsInputError("cells must be one integer cell id per item")
    ids, codes = np.unique(c, return_inverse=True)
    return ids, codes


def sample_stratified(cells: npt.ArrayLike, *, n_per_cell: int, seed: int | None = None) -> SampleDraw:
    """Equal n per cell (model x group), capped at the cell size; SRS without replacement per cell.

    `cells[i]` is item i's cell id. In cell c of size N_c, n_c = min(n_per_cell, N_c) items are
    drawn and pi_i = n_c / N_c. One key per item is drawn from the generator in item order, so
    the draw of one cell does not depend on how many cells come before it.
    """
    if not isinstance(n_per_cell, (int, np.integer)) or n_per_cell < 0:
        raise StatsInputError("n_per_cell must be a non-negative whole number")
    ids, codes = _cell_codes(cells)
    rng, used = _rng(seed)
    keys = rng.random(codes.size)
    selected = np.zeros(codes.size, dtype=bool)
    pi = np.zeros(codes.size)
    strata = []
    for k, cell in enumerate(ids.tolist()):
        members = np.flatnonzero(codes == k)
        n_c = min(int(n_per_cell), members.size)
        selected[members[_draw_fixed_size(keys[members], n_c)]] = True
        pi[members] = n_c / members.size
        strata.append(Stratum(int(cell), int(members.size), float(n_c), n_c / members.size))
    return SampleDraw("stratified", _frozen(pi), _frozen(selected), used, float(pi.sum()), tuple(strata))


# --------------------------------------------------------------------------- active design


def _as_probabilities(category_probs: npt.ArrayLike) -> np.ndarray:
    """(N, K) category probabilities; a 1-d array is read as P(positive) of a binary scorer."""
    p = np.asarray(category_probs, dtype=float)
    if p.ndim == 1:
        p = np.stack([1.0 - p, p], axis=1)
    if p.ndim != 2 or p.shape[1] < 2:
        raise StatsInputError("category_probs must be (items, K >= 2) or one probability per item")
    if not np.all(np.isfinite(p)) or np.any(p < 0) or np.any(p > 1):
        raise StatsInputError("category probabilities must be finite and lie in [0, 1]")
    if not np.allclose(p.sum(axis=1), 1.0, atol=1e-6):
        raise StatsInputError("each item's category probabilities must sum to 1")
    return p


def uncertainty(category_probs: npt.ArrayLike, rule: UncertaintyRule = "sqrt_variance") -> np.ndarray:
    """Per-item uncertainty of a scorer from its category probabilities p_ik (rows sum to 1).

    - "sqrt_variance": u_i = sqrt(1 - sum_k p_ik^2), the square root of the expected squared
      error sum_k E[(1{Y=k} - p_k)^2 | x] of a calibrated scorer. Zrnic and Candes (2024, sec. 3)
      show the variance-minimising rule is pi(x) proportional to sqrt(E[(Y - f(X))^2 | X = x]);
      summing that error over the K category indicators gives this rule, one draw for every
      category's rate (binary: sqrt(2 p (1 - p))).
    - "least_confidence": u_i = 1 - max_k p_ik, the rule of the paper's experiments for binary
      outcomes, min(f, 1 - f).
    """
    p = _as_probabilities(category_probs)
    if rule == "sqrt_variance":
        return np.sqrt(np.clip(1.0 - np.sum(p * p, axis=1), 0.0, None))
    if rule == "least_confidence":
        return 1.0 - p.max(axis=1)
    raise StatsInputError(f"unknown uncertainty rule {rule!r}")


def capped_probabilities(weights: npt.ArrayLike, budget: float) -> np.ndarray:
    """pi_i = min(1, c w_i) with c chosen so that sum_i pi_i = budget (w_i > 0).

    Iterative: items whose share exceeds 1 are fixed at 1 and the rest of the budget is spread
    over the others in proportion to w, until no probability exceeds 1 (at most N rounds; the
    capped set only grows). A budget >= N gives pi = 1 everywhere.
    """
    w = np.asarray(weights, dtype=float)
    if w.ndim != 1 or np.any(~np.isfinite(w)) or np.any(w <= 0):
        raise StatsInputError("weights must be positive and finite")
    if not budget > 0:
        raise StatsInputError("budget must be positive")
    if budget >= w.size:
        return np.ones(w.size)
    capped = np.zeros(w.size, dtype=bool)
    pi = np.ones(w.size)
    while True:
        free = ~capped
        pi[free] = (budget - capped.sum()) * w[free] / w[free].sum()
        over = free & (pi > 1.0)
        if not over.any():
            return np.minimum(pi, 1.0)
        capped |= over
        pi[over] = 1.0


def active_inclusion_probabilities(
    category_probs: npt.ArrayLike,
    *,
    budget: float,
    uniform_share: float = 0.2,
    rule: UncertaintyRule = "sqrt_variance",
) -> np.ndarray:
    """Active-sampling pi_i: uncertainty-proportional mixed with a uniform floor, sum_i pi_i = budget.

    With u_i = `uncertainty(p, rule)` and tau = `uniform_share` in (0, 1]:
    w_i = (1 - tau) u_i / sum_j u_j + tau / N (w_i = 1/N when every u_i is 0), then
    pi_i = min(1, c w_i) with sum_i pi_i = budget (`capped_probabilities`). Before capping
    pi_i >= tau budget / N, and capping only raises the others, so every item can be drawn. This is
    Zrnic and Candes's pi^(tau) = (1 - tau) eta u(x) + tau pi^unif (their experiments), with the
    capped excess redistributed instead of lost so that the expected number of labels is the budget.
    """
    u = uncertainty(category_probs, rule)
    if not 0.0 < uniform_share <= 1.0:
        raise StatsInputError("uniform_share must lie in (0, 1]: every item needs pi > 0")
    n = u.size
    if n == 0:
        return np.zeros(0)
    total = u.sum()
    weights = np.full(n, 1.0 / n) if total <= 0 else (1 - uniform_share) * u / total + uniform_share / n
    return capped_probabilities(weights, budget)


def sample_active(
    category_probs: npt.ArrayLike,
    *,
    budget: float,
    uniform_share: float = 0.2,
    rule: UncertaintyRule = "sqrt_variance",
    cells: npt.ArrayLike | None = None,
    seed: int | None = None,
) -> SampleDraw:
    """Poisson sampling with the active pi (`active_inclusion_probabilities`): item i kept w.p. pi_i.

    Without `cells`, `budget` is the expected number of labels over all items. With `cells`, the
    probabilities are computed inside each cell with an expected min(budget, N_c) labels per cell
    (equal expected n per model x group, like the stratified plan). The draw: one uniform key U_i
    per item, kept when U_i < pi_i.
    """
    p = _as_probabilities(category_probs)
    if cells is None:
        pi = active_inclusion_probabilities(p, budget=budget, uniform_share=uniform_share, rule=rule)
        strata: tuple[Stratum, ...] = ()
    else:
        ids, codes = _cell_codes(cells)
        if codes.size != p.shape[0]:
            raise StatsInputError("cells and category_probs must have one entry per item")
        pi = np.zeros(codes.size)
        out = []
        for k, cell in enumerate(ids.tolist()):
            members = np.flatnonzero(codes == k)
            pi[members] = active_inclusion_probabilities(
                p[members], budget=min(budget, members.size), uniform_share=uniform_share, rule=rule
            )
            expected = float(pi[members].sum())
            out.append(Stratum(int(cell), int(members.size), expected, expected / members.size))
        strata = tuple(out)
    rng, used = _rng(seed)
    selected = rng.random(pi.size) < pi
    return SampleDraw("active", _frozen(pi), _frozen(selected), used, float(pi.sum()), strata)
