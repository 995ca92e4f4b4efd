"""The one definition of an item's label summary: `label_pattern` and `label_signature` (CampaignItem).

Written by the labelling services and imports, read by the dashboards' selectors, counted by the
tally triggers (annotations/analysis/tallies.py, which only compare and group the strings). No Django here.

- pattern: the labels' category ids, sorted, comma-separated: "12,12,14";
- signature: "annotator:category" pairs sorted by annotator id: "5:12,7:12,9:14".
"""

import numpy as np


def label_summary(pairs: list[tuple[int, int]]) -> tuple[str, str]:
    """(pattern, signature) of an item's labels given as (annotator id, category id) pairs."""
    pairs = sorted(pairs)
    pattern = ",".join(str(c) for c in sorted(c for _, c in pairs))
    return pattern, ",".join(f"{a}:{c}" for a, c in pairs)


def signature_pairs(signature: str) -> list[tuple[int, int]]:
    """The (annotator id, category id) pairs of one signature."""
    if not signature:
        return []
    return [(int(a), int(c)) for a, c in (part.split(":") for part in signature.split(","))]


def pattern_category_ids(pattern: str) -> list[int]:
    """The category ids of one pattern (with repeats)."""
    return [int(x) for x in pattern.split(",")] if pattern else []


def signatures_parse(signatures: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Labels per signature, and all signatures' (annotator id, category id) pairs in order, as arrays.

    One numpy parse of all the numbers at once ("5:12,7:12" holds 2 pairs, 4 numbers): the dashboards
    parse thousands of distinct signatures per request.
    """
    sizes = np.array([text.count(":") for text in signatures], dtype=np.int64)
    joined = ",".join(text for text in signatures if text).replace(":", ",")
    numbers = np.array(joined.split(","), dtype=np.int64) if joined else np.zeros(0, dtype=np.int64)
    if numbers.size != 2 * sizes.sum():
        raise ValueError("malformed label signature")
    return sizes, numbers.reshape(-1, 2)
