"""The cells and tables every report table is made of (see annotations/analysis/report.py's docstring)."""

from __future__ import annotations

import math

import numpy as np

from annotations.stats import Estimate, wilson_intervals


def estimate_dict(estimate: Estimate) -> dict:
    """An Estimate as a JSON-able dict (value None with a reason when undefined)."""
    value = number(estimate.value)
    reason = estimate.reason
    if value is None and reason is None:
        reason = "not finite"
    return {
        "value": value,
        "reason": reason,
        "n": estimate.n,
        "ci_low": number(estimate.ci_low),
        "ci_high": number(estimate.ci_high),
    }


def number(x) -> float | None:
    """A finite float, or None (JSON has no nan or infinity; a Fisher odds ratio may be infinite)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def table(key: str, title: str, columns: list[tuple[str, str, str]], rows: list[dict]) -> dict:
    return {
        "key": key,
        "title": title,
        "columns": [{"key": k, "label": label, "kind": kind} for k, label, kind in columns],
        "rows": rows,
    }


def rate_cells(x: np.ndarray, n: np.ndarray, *, reason: str = "no observations") -> list[dict]:
    """Rate cells x/n with Wilson 95% intervals, computed in one vectorised call."""
    x, n = np.asarray(x), np.asarray(n)
    low, high = wilson_intervals(x, n)
    cells = []
    for xi, ni, lo, hi in zip(x.tolist(), n.tolist(), low.tolist(), high.tolist(), strict=True):
        if ni == 0:
            cells.append({"value": None, "reason": reason, "n": 0, "ci_low": None, "ci_high": None})
        else:
            cells.append({"value": xi / ni, "reason": None, "n": ni, "ci_low": lo, "ci_high": hi})
    return cells
