"""Benchmark: our nominal Krippendorff's alpha and its bootstrap against the `krippendorff` package.

Run: .venv/bin/python bench/bench_krippendorff.py [--items 1000000] [--raters 5] [--categories 6]
No database and no Django; needs the dev extra (the `krippendorff` package: `uv sync --extra dev`).
Goals: ours >= 3x faster than krippendorff.alpha and equal within 1e-9; 1,000 bootstrap
resamples in < 2 s.
"""

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
from _common import cpu_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import krippendorff

from annotations.stats.agreement import count_matrix, krippendorff_alpha


def best_of(repeats: int, func: Callable[[], Any]) -> tuple[float, Any]:
    """Fastest wall time of `repeats` calls and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - start)
    return best, result


def make_codes(n_items: int, n_raters: int, n_categories: int, seed: int) -> np.ndarray:
    """Item x rater codes: raters agree with a latent label 60% of the time, 20% missing."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, n_categories, size=(n_items, 1), dtype=np.int64)
    noise = rng.integers(0, n_categories, size=(n_items, n_raters), dtype=np.int64)
    codes = np.where(rng.random((n_items, n_raters)) < 0.6, truth, noise)
    codes[rng.random((n_items, n_raters)) < 0.2] = -1
    return codes


def main() -> None:
    """Time both implementations on one matrix and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--raters", type=int, default=5)
    parser.add_argument("--categories", type=int, default=6)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    print(f"machine: nproc={os.cpu_count()} cpu={cpu_model()!r} python={platform.python_version()}")
    print(f"numpy {np.__version__}, krippendorff {version('krippendorff')}")
    codes = make_codes(args.items, args.raters, args.categories, args.seed)
    missing = float((codes < 0).mean())
    print(
        f"data: {args.items:,} items x {args.raters} raters, {args.categories} categories, "
        f"{missing:.1%} missing"
    )
    reliability_data = np.where(codes >= 0, codes, np.nan).T  # the package's layout, nan = missing

    t_codes, ours_codes = best_of(
        args.repeats,
        lambda: krippendorff_alpha(count_matrix(codes, args.categories), n_resamples=0),
    )
    counts = count_matrix(codes, args.categories)
    t_counts, ours = best_of(args.repeats, lambda: krippendorff_alpha(counts, n_resamples=0))
    t_pkg, theirs = best_of(
        args.repeats,
        lambda: krippendorff.alpha(reliability_data=reliability_data, level_of_measurement="nominal"),
    )
    t_boot_call, boot = best_of(
        args.repeats, lambda: krippendorff_alpha(counts, n_resamples=args.resamples, rng=args.seed)
    )
    t_boot = t_boot_call - t_counts  # the point estimate is part of the call
    n_patterns = len(np.unique(counts[counts.sum(1) >= 2], axis=0))

    diff = abs(ours.value - float(theirs))
    print(f"{'':34}{'seconds':>10}{'alpha':>22}")
    print(f"{'ours, from rater matrix':34}{t_codes:10.3f}{ours_codes.value:22.15f}")
    print(f"{'ours, from count matrix':34}{t_counts:10.3f}{ours.value:22.15f}")
    print(f"{'krippendorff.alpha (package)':34}{t_pkg:10.3f}{float(theirs):22.15f}")
    print(
        f"speed-up: {t_pkg / t_codes:.1f}x from the rater matrix, {t_pkg / t_counts:.1f}x from counts "
        f"(goal >= 3x)"
    )
    print(f"|ours - package| = {diff:.2e} (goal <= 1e-9): {'OK' if diff <= 1e-9 else 'FAIL'}")
    print(
        f"bootstrap: {args.resamples} resamples over {boot.n:,} pairable items "
        f"({n_patterns} distinct count rows) in {t_boot:.3f} s beyond the point estimate, "
        f"{t_boot_call:.3f} s for the whole call (goal < 2 s)"
    )
    print(f"alpha = {boot.value:.6f}, 95% CI [{boot.ci_low:.6f}, {boot.ci_high:.6f}]")
    print(f"best of {args.repeats} runs each")


if __name__ == "__main__":
    main()
