"""Reading a stored score's category probabilities: one rule for the active draw and the estimates.

A score's `probabilities` is a JSON object {category key: probability}. It is usable when it is a
non-empty object whose keys are all categories of the scheme, whose values are numbers (not
booleans) in [0, 1], and whose sum is within PROBABILITY_SUM_TOLERANCE of 1; a missing key counts 0
and the row is rescaled to sum 1. Anything else (written past the score services, or by an older
version) is unusable: the caller falls back to the score's category or treats the output as
unscored, and never fails on it.

`probability_row` reads one value (the reference); `probability_rows` reads many at once with numpy
and gives the same answer (tests/inference/test_score_probabilities.py checks them against each other):
the estimates read every output of a campaign, and the per-row reading cost 60 us an output
(13 of the 16.5 s that machine_assisted_population took at 215,040 outputs, profiled).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np

PROBABILITY_SUM_TOLERANCE = 0.01


def _number(value: object) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer past float's range
        return False


def _parsed(raw: object) -> object:
    if isinstance(raw, (str, bytes)):
        try:
            return json.loads(raw)
        except ValueError:
            return None
    return raw


def probability_row(probabilities: object, keys: Sequence[str]) -> list[float] | None:
    """One score's probabilities over `keys` (JSON text or a dict), rescaled to sum 1; None if unusable."""
    probabilities = _parsed(probabilities)
    if not isinstance(probabilities, dict) or not probabilities or set(probabilities) - set(keys):
        return None
    row = [probabilities.get(key, 0.0) for key in keys]
    if not all(_number(p) and 0 <= p <= 1 for p in row):
        return None
    total = sum(row)
    if abs(total - 1.0) > PROBABILITY_SUM_TOLERANCE:
        return None
    return [p / total for p in row]


def _parsed_all(raws: Sequence[object]) -> list[object]:
    """Every value parsed; JSON texts in one json.loads call when all are valid (they are, from the DB)."""
    texts = [i for i, raw in enumerate(raws) if isinstance(raw, str)]
    out = list(raws)
    if texts:
        try:
            parsed = json.loads("[" + ",".join(raws[i] or "null" for i in texts) + "]")
        except ValueError:
            parsed = [_parsed(raws[i]) for i in texts]
        if len(parsed) != len(texts):  # a text such as '1, 2' joined into two values
            parsed = [_parsed(raws[i]) for i in texts]
        for i, value in zip(texts, parsed, strict=True):
            out[i] = value
    return out


def probability_rows(raws: Sequence[object], keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(matrix, usable) for many stored values: matrix[i] = probability_row(raws[i], keys) where usable[i],
    nan elsewhere. Same rule as probability_row, in a few passes over Python lists and numpy arrays."""
    n, k = len(raws), len(keys)
    values = _parsed_all(raws)
    dicts = [v if type(v) is dict else {} for v in values]
    sizes = np.fromiter(map(len, dicts), dtype=np.int64, count=n)
    present = np.zeros(n, dtype=np.int64)
    matrix = np.zeros((n, k))
    ok = sizes > 0
    for j, key in enumerate(keys):
        present += np.fromiter((key in d for d in dicts), dtype=bool, count=n)
        column = [d.get(key, 0.0) for d in dicts]
        try:
            plain = {type(v) for v in column} <= {float, int}
            if plain:
                matrix[:, j] = np.array(column, dtype=float)
        except OverflowError:  # an integer past float's range
            plain = False
        if not plain:
            numeric = np.fromiter((_number(v) for v in column), dtype=bool, count=n)
            ok &= numeric
            matrix[:, j] = [v if good else 0.0 for v, good in zip(column, numeric.tolist(), strict=True)]
    ok &= present == sizes  # no key outside the scheme
    with np.errstate(invalid="ignore"):
        ok &= np.isfinite(matrix).all(1) & (matrix >= 0).all(1) & (matrix <= 1).all(1)
        total = matrix.sum(1)
        ok &= np.abs(total - 1.0) <= PROBABILITY_SUM_TOLERANCE
        matrix = matrix / np.where(ok, total, 1.0)[:, None]
    matrix[~ok] = np.nan
    return matrix, ok
