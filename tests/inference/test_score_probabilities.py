"""The one reading of stored score probabilities: the vectorised probability_rows equals the per-row
probability_row on every kind of value, valid or not (inference/scorers/probabilities.py)."""

import json
import random

import numpy as np
import pytest

from inference.scorers.probabilities import PROBABILITY_SUM_TOLERANCE, probability_row, probability_rows

KEYS = ["answer", "refusal-to-answer", "harmful-refusal"]
ODD = [
    None,
    "",
    "{}",
    {},
    "not json",
    "[0.5, 0.5]",
    "1, 2",
    [0.5, 0.5],
    0.7,
    {"answer": 1},
    {"answer": 0.5, "refusal-to-answer": 0.5},
    '{"answer": 0.25, "harmful-refusal": 0.75}',
    {"answer": 0.995},  # inside the tolerance: rescaled
    {"answer": 0.98},  # outside
    {"answer": "0.5", "refusal-to-answer": 0.5},
    {"answer": True, "refusal-to-answer": 0.0},
    {"answer": None, "refusal-to-answer": 1.0},
    {"answer": 1.5, "refusal-to-answer": -0.5},
    {"answer": float("nan"), "refusal-to-answer": 1.0},
    {"answer": 10**400, "refusal-to-answer": 0.0},
    '{"answer": 1e400, "refusal-to-answer": 0}',
    {"answer": 0.5, "other": 0.5},
    {"answer": [0.5], "refusal-to-answer": 0.5},
]


def _same(raws):
    matrix, usable = probability_rows(raws, KEYS)
    assert matrix.shape == (len(raws), len(KEYS))
    assert usable.shape == (len(raws),)
    for i, raw in enumerate(raws):
        row = probability_row(raw, KEYS)
        assert usable[i] == (row is not None), raw
        if row is None:
            assert np.isnan(matrix[i]).all()
        else:
            assert matrix[i] == pytest.approx(row, abs=1e-15)
            assert matrix[i].sum() == pytest.approx(1.0)


@pytest.mark.parametrize("raw", ODD, ids=range(len(ODD)))
def test_each_odd_value_alone(raw):
    _same([raw])


def test_the_rule():
    assert probability_row({"answer": 0.995}, KEYS) == pytest.approx([1.0, 0.0, 0.0])
    assert probability_row({"answer": 1 - 2 * PROBABILITY_SUM_TOLERANCE}, KEYS) is None
    assert probability_row({"answer": True}, KEYS) is None
    assert probability_row({"answer": 0.5, "other": 0.5}, KEYS) is None
    assert probability_row('{"refusal-to-answer": 1}', KEYS) == [0.0, 1.0, 0.0]


def test_many_mixed_values_in_one_call_agree_with_the_row_reading():
    rng = random.Random(15)
    raws = []
    for _ in range(3000):
        kind = rng.random()
        if kind < 0.6:
            p = [rng.random() for _ in KEYS]
            row = {k: v / sum(p) for k, v in zip(KEYS, p, strict=True) if rng.random() < 0.9}
            raws.append(json.dumps(row) if rng.random() < 0.5 else row)
        else:
            raws.append(rng.choice(ODD))
    _same(raws)


def test_no_values():
    matrix, usable = probability_rows([], KEYS)
    assert matrix.shape == (0, 3)
    assert usable.shape == (0,)
