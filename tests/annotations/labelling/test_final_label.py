"""The final-label rule, checked against one table of cases on both of its sides: the Python definition
(annotations/labelling/final_label.py, used by items_refresh, the label import and SQLite's submit) and the
PostgreSQL submit function (annotations/labelling/submit_sql.py). A change to either alone fails here."""

from typing import NamedTuple

import pytest
from django.db import connection

from annotations.labelling.final_label import VOTE_RULES, item_outcome
from annotations.labelling.label_summary import label_summary
from annotations.labelling.services import assignment_next, label_submit
from annotations.models import Campaign, CampaignItem
from tests import factories

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


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_the_sql_submit_function_follows_the_same_table(case, default_scheme, make_user):
    """label_submit on PostgreSQL runs annotations_label_submit (labelling/submit_sql.py): the item it
    leaves must be the table's, and the summary label_summary's."""
    if connection.vendor != "postgresql":
        pytest.skip("annotations_label_submit exists on PostgreSQL only (set DATABASE_URL)")
    people = [make_user("annotator", f"rater{i}") for i in range(max(len(case.labels), 1))]
    outputs = factories.two_model_outputs()[:1]
    campaign = factories.campaign_with_items(
        default_scheme, outputs, labels_per_output=case.needed, annotators=people
    )
    Campaign.objects.filter(pk=campaign.pk).update(final_rule=case.rule)
    campaign.refresh_from_db()
    categories = {c.key: c.pk for c in default_scheme.categories.all()}
    code = {A: categories["answer"], R: categories["refusal-to-answer"], P: categories["partial-answer"]}
    key = {A: "answer", R: "refusal-to-answer", P: "partial-answer"}
    for person, label in zip(people, case.labels, strict=False):
        lease = assignment_next(campaign=campaign, annotator=person)
        label_submit(campaign=campaign, annotator=person, item_id=lease.item_id, category_key=key[label])
    item = CampaignItem.objects.get(campaign=campaign)
    final = None if case.final is None else code[case.final]
    assert (item.status, item.final_category_id, item.final_source) == (case.status, final, case.source)
    pairs = [(p.pk, code[label]) for p, label in zip(people, case.labels, strict=False)]
    assert (item.label_pattern, item.label_signature) == label_summary(pairs)
