"""The label summary format (annotations/labelling/label_summary.py): written, read back, parsed in bulk."""

import numpy as np
import pytest

from annotations.labelling.label_summary import (
    label_summary,
    pattern_category_ids,
    signature_pairs,
    signatures_parse,
)


def test_summary_is_sorted_and_round_trips():
    pattern, signature = label_summary([(9, 14), (5, 12), (7, 12)])
    assert (pattern, signature) == ("12,12,14", "5:12,7:12,9:14")
    assert signature_pairs(signature) == [(5, 12), (7, 12), (9, 14)]
    assert pattern_category_ids(pattern) == [12, 12, 14]
    assert label_summary([]) == ("", "")
    assert signature_pairs("") == []


def test_signatures_parse_in_bulk_matches_one_by_one():
    signatures = ["5:12,7:12,9:14", "", "3:1", "10:2,11:3"]
    sizes, pairs = signatures_parse(signatures)
    np.testing.assert_array_equal(sizes, [3, 0, 1, 2])
    assert [tuple(p) for p in pairs.tolist()] == [pair for s in signatures for pair in signature_pairs(s)]


def test_malformed_signature_is_an_error():
    with pytest.raises(ValueError, match="malformed"):
        signatures_parse(["5:12,7"])
