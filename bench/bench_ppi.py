"""Benchmark: coverage and width of human-only, PPI++ and active estimates of refusal rates.

Run: .venv/bin/python bench/bench_ppi.py [--draws 1000] [--items-per-cell 400] [--uniform-share 0.2]
A pure simulation (no database, no Django, no ppi_py). Synthetic campaign: 3 models x 6 groups, each
cell's outputs have a scorer probability f = expit(b_cell + s Z), Z ~ N(0, 1), and a human label
Y ~ Bernoulli(f), with s set so that the scorer's 0/1 call (f > 0.5) agrees with the human label on
88% of outputs. Each draw makes fresh outputs; the target is each cell's rate E[f] (Gauss-Hermite).
Three scorers report on the same outputs: the calibrated f, an overconfident expit(2 logit f)
(same calls, same accuracy) and the bare 0/1 call (like a string match).

For each budget (labels per cell) the plans of annotations.stats.sampling draw the labels:
stratified (equal n per cell) for human-only and PPI++, active (Poisson, expected n per cell) for
the active estimator. Printed per budget: coverage of the 95% intervals over cells x draws (an
undefined interval counts as a miss), the worst cell's coverage, the mean width, and the share of
human labels each method needs for the human-only width, (width / human-only width)^2 (human-only
width scales as 1 / sqrt(n)); and the coverage of the group-minus-control differences.
Goals (issue #15): coverage >= 0.94 at every budget; the human-only width with <= 55% of the labels.
"""

import argparse
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _common import cpu_model
from scipy.optimize import brentq
from scipy.special import expit, logit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from annotations.stats.ppi import (
    MeanEstimate,
    active_mean_ci,
    classical_mean_ci,
    differences_from_control,
    ppi_mean_ci,
)
from annotations.stats.sampling import sample_active, sample_stratified

MODEL_SHIFT = (-2.0, -0.8, 0.4)
GROUP_SHIFT = (0.0, -1.0, -0.5, 0.5, 1.0, 1.5)  # group 0 is the control
BUDGET_SHARES = (0.05, 0.10, 0.20, 0.30, 0.50)
METHODS = ("human-only", "ppi++", "active")
SCORERS = ("calibrated", "overconfident", "0/1 call")
NODES, WEIGHTS = np.polynomial.hermite.hermgauss(200)


def expected(func, b: float, s: float) -> float:
    """E[func(expit(b + s Z))] for Z ~ N(0, 1), by Gauss-Hermite quadrature."""
    return float(np.sum(WEIGHTS * func(expit(b + s * np.sqrt(2) * NODES))) / np.sqrt(np.pi))


def spread_for_accuracy(logits: np.ndarray, accuracy: float) -> float:
    """The s that makes the mean over cells of E[max(f, 1 - f)] equal `accuracy`."""

    def gap(s: float) -> float:
        return np.mean([expected(lambda f: np.maximum(f, 1 - f), b, s) for b in logits]) - accuracy

    return brentq(gap, 0.01, 20.0)


def report(pred: np.ndarray, scorer: str) -> np.ndarray:
    """What a scorer reports for true probabilities `pred`."""
    if scorer == "calibrated":
        return pred
    if scorer == "overconfident":
        return expit(2 * logit(np.clip(pred, 1e-12, 1 - 1e-12)))
    return (pred > 0.5).astype(float)


@dataclass
class Tally:
    """Sums over draws, indexed [scorer, budget, method] (hits also by cell)."""

    hits: np.ndarray
    widths: np.ndarray
    defined: np.ndarray
    diff_hits: np.ndarray
    labels: np.ndarray
    agree: float = 0.0


def simulate_draw(tally: Tally, rng: np.random.Generator, d: int, setup: dict) -> None:
    """One draw: fresh outputs and labels, then every scorer x budget x method."""
    cells, logits, s, theta = setup["cells"], setup["logits"], setup["s"], setup["theta"]
    n_groups, n_models = len(GROUP_SHIFT), len(MODEL_SHIFT)
    f = expit(logits[cells] + s * rng.standard_normal(cells.size))
    y = (rng.random(cells.size) < f).astype(float)
    tally.agree += np.mean((f > 0.5) == (y == 1))
    for k, scorer in enumerate(SCORERS):
        pred = report(f, scorer)
        for j, n in enumerate(setup["budgets"]):
            seed = ((setup["seed"] * 1009 + d) * 7 + k) * 11 + j
            strat = sample_stratified(cells, n_per_cell=n, seed=seed).selected
            draw = sample_active(pred, budget=n, cells=cells, uniform_share=setup["tau"], seed=seed)
            act, pi = draw.selected, draw.inclusion_probabilities
            per_method: list[list[MeanEstimate]] = [[], [], []]
            for c, idx in enumerate(setup["members"]):
                yc, fc, m, a = y[idx], pred[idx], strat[idx], act[idx]
                ests = (
                    classical_mean_ci(yc[m]),
                    ppi_mean_ci(yc[m], fc[m], fc[~m]),
                    active_mean_ci(yc[a], fc[a], fc[~a], pi[idx][a]),
                )
                for i, est in enumerate(ests):
                    per_method[i].append(est)
                    tally.labels[k, j, i] += est.n_labelled
                    if est.value is not None:
                        tally.defined[k, j, i] += 1
                        tally.widths[k, j, i] += est.ci_high - est.ci_low
                        tally.hits[k, j, i, c] += est.ci_low <= theta[c] <= est.ci_high
            for i, ests_i in enumerate(per_method):
                for model in range(n_models):
                    block = slice(model * n_groups, (model + 1) * n_groups)
                    truth = theta[block]
                    for diff in differences_from_control(ests_i[block], control=0):
                        tally.diff_hits[k, j, i] += diff.value is not None and (
                            diff.ci_low <= truth[diff.group] - truth[0] <= diff.ci_high
                        )


def print_tables(tally: Tally, setup: dict, draws: int) -> None:
    """One table per scorer: coverage, worst cell, width, label share, difference coverage."""
    n_cells = setup["logits"].size
    n_intervals = draws * n_cells
    n_diffs = draws * len(MODEL_SHIFT) * (len(GROUP_SHIFT) - 1)
    for k, scorer in enumerate(SCORERS):
        print(f"\nscorer: {scorer}")
        print(
            f"{'labels/cell':>11} {'method':>10} {'coverage':>8} {'worst cell':>10} {'mean width':>10} "
            f"{'labels for human width':>22} {'diff coverage':>13} {'undefined':>9}"
        )
        for j, n in enumerate(setup["budgets"]):
            human_width = tally.widths[k, j, 0] / tally.defined[k, j, 0]
            for i, method in enumerate(METHODS):
                width = tally.widths[k, j, i] / tally.defined[k, j, i]
                share = (width / human_width) ** 2 * tally.labels[k, j, i] / tally.labels[k, j, 0]
                print(
                    f"{n:>11} {method:>10} {tally.hits[k, j, i].sum() / n_intervals:>8.4f} "
                    f"{tally.hits[k, j, i].min() / draws:>10.3f} {width:>10.4f} {share:>22.2f} "
                    f"{tally.diff_hits[k, j, i] / n_diffs:>13.4f} "
                    f"{n_intervals - tally.defined[k, j, i]:>9.0f}"
                )


def main() -> None:
    """Simulate, then print one table per scorer."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--items-per-cell", type=int, default=400)
    parser.add_argument("--uniform-share", type=float, default=0.2)
    parser.add_argument("--accuracy", type=float, default=0.88)
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()

    logits = np.add.outer(MODEL_SHIFT, GROUP_SHIFT).ravel()  # cell = model * n_groups + group
    s = spread_for_accuracy(logits, args.accuracy)
    cells = np.repeat(np.arange(logits.size), args.items_per_cell)
    setup = {
        "logits": logits,
        "s": s,
        "theta": np.array([expected(lambda f: f, b, s) for b in logits]),
        "cells": cells,
        "members": [np.flatnonzero(cells == c) for c in range(logits.size)],
        "budgets": [round(share * args.items_per_cell) for share in BUDGET_SHARES],
        "tau": args.uniform_share,
        "seed": args.seed,
    }
    shape = (len(SCORERS), len(BUDGET_SHARES), len(METHODS))
    tally = Tally(
        np.zeros((*shape, logits.size)), np.zeros(shape), np.zeros(shape), np.zeros(shape), np.zeros(shape)
    )
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    for d in range(args.draws):
        simulate_draw(tally, rng, d, setup)
    elapsed = time.perf_counter() - start
    theta = setup["theta"]
    print(
        f"bench_ppi: Python {platform.python_version()}, numpy {np.__version__}, "
        f"{cpu_model()}, {os.cpu_count()} CPUs"
    )
    print(
        f"{len(MODEL_SHIFT)} models x {len(GROUP_SHIFT)} groups, {args.items_per_cell} outputs per cell, "
        f"{args.draws} draws, uniform share {args.uniform_share}, seed {args.seed}; "
        f"scorer spread s = {s:.3f}, "
        f"binary accuracy {tally.agree / args.draws:.4f} (target {args.accuracy}); "
        f"cell rates {theta.min():.3f}-{theta.max():.3f}; {elapsed:.0f} s"
    )
    print_tables(tally, setup, args.draws)


if __name__ == "__main__":
    main()
