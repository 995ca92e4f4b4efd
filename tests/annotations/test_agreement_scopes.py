"""The one-pass, many-scope annotator agreement equals annotations.stats applied scope by scope."""

import numpy as np
import pytest

from annotations.selectors.agreement_scopes import LabelRows, consensus_by_scope, pairwise_kappa_by_scope
from annotations.stats import count_matrix, pairwise_cohen_kappa, rater_vs_consensus


def _random_design(seed: int, n_items: int = 400, n_raters: int = 6, k: int = 4):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n_items)
    codes = np.where(
        rng.random((n_items, n_raters)) < 0.7, truth[:, None], rng.integers(0, k, (n_items, n_raters))
    )
    codes[rng.random((n_items, n_raters)) < 0.5] = -1
    model = rng.integers(0, 3, n_items)
    group = rng.integers(-1, 4, n_items)  # -1: a prompt without a group belongs to no group scope
    item, rater = np.nonzero(codes >= 0)
    shuffle = rng.permutation(item.size)  # labels come from the database in no particular order
    rows = LabelRows(
        item[shuffle], rater[shuffle], codes[item, rater][shuffle], count_matrix(codes, k), n_raters
    )
    masks = [np.ones(n_items, bool)] + [model == m for m in range(3)] + [group == g for g in range(4)]
    partitions = [(0, np.zeros(n_items, dtype=np.int64)), (1, model), (4, group)]
    return codes, rows, masks, partitions, k


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pairwise_kappa_by_scope_equals_per_scope(seed):
    codes, rows, masks, partitions, k = _random_design(seed)
    ours = pairwise_kappa_by_scope(rows, partitions, len(masks))
    for s, mask in enumerate(masks):
        assert ours[s] == pairwise_cohen_kappa(codes[mask], k)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_consensus_by_scope_equals_per_scope(seed):
    codes, rows, masks, partitions, k = _random_design(seed)
    ours = consensus_by_scope(rows, partitions, len(masks))
    for s, mask in enumerate(masks):
        assert ours[s] == rater_vs_consensus(codes[mask], k)


def test_empty_design():
    rows = LabelRows(
        np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3), np.int64), 0
    )
    partitions = [(0, np.zeros(0, dtype=np.int64))]
    assert pairwise_kappa_by_scope(rows, partitions, 1) == [()]
    assert consensus_by_scope(rows, partitions, 1) == [()]
