"""The final-label rule (annotations/labelling/final_label.py), checked against one table of cases."""

from typing import NamedTuple

import pytest

from annotations.labelling.final_label import VOTE_RULES, item_outcome
from annotations.models import Campaign

A, R, P = 1, 2, 3  # category ids
ADJUDICATE, MAJORITY = Campaign.FinalRule.ADJUDICATE, Campaign.FinalRule.MAJORITY


class Case(NamedTuple):
    """An item's labels (category ids), the labels it needs and its campaign's rule; what follows."""

    labels: list[int]
    needed: int
    rule: str
    status: str
    final: int | None
    source: str


CASES = [
    Case(*case)
    for case in [
        ([], 2, ADJUDICATE, "open", None, ""),
        ([A], 2, ADJUDICATE, "open", None, ""),
        ([A, A], 3, MAJORITY, "open", None, ""),
        ([A], 1, ADJUDICATE, "complete", A, "unanimous"),
        ([P], 1, MAJORITY, "complete", P, "unanimous"),
        ([A, A], 2, ADJUDICATE, "complete", A, "unanimous"),
        ([R, R, R], 3, MAJORITY, "complete", R, "unanimous"),
        ([A, R], 2, ADJUDICATE, "disputed", None, ""),
        ([A, A, R], 3, ADJUDICATE, "disputed", None, ""),
        ([A, A, R], 3, MAJORITY, "complete", A, "majority"),
        ([R, A, R], 3, MAJORITY, "complete", R, "majority"),
        ([A, R], 2, MAJORITY, "disputed", None, ""),
        ([A, R, P], 3, MAJORITY, "disputed", None, ""),
        ([R, A, R, A], 4, MAJORITY, "disputed", None, ""),  # a tie is no majority
        ([R, A, R, R], 4, MAJORITY, "complete", R, "majority"),
        ([P, A, P, R, P], 5, MAJORITY, "complete", P, "majority"),
        ([P, A, P, R, A], 5, MAJORITY, "disputed", None, ""),  # the most labels, but not more than half
    ]
]


def _case_id(case: Case) -> str:
    return f"{case.labels}-{case.needed}-{case.rule}"


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_item_outcome(case):
    outcome = item_outcome(category_ids=case.labels, labels_needed=case.needed, final_rule=case.rule)
    assert (outcome.status, outcome.final_category_id, outcome.final_source) == case[3:]


@pytest.mark.parametrize("labels", [[], [A], [A, R]])
def test_an_adjudication_decides_whatever_the_labels_say(labels):
    outcome = item_outcome(
        category_ids=labels, labels_needed=2, final_rule=ADJUDICATE, adjudicated_category_id=P
    )
    assert (outcome.status, outcome.final_category_id, outcome.final_source) == (
        "adjudicated",
        P,
        "adjudicated",
    )


def test_every_campaign_rule_names_a_vote_rule():
    assert set(VOTE_RULES) == set(Campaign.FinalRule.values)
