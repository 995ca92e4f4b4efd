"""Scorer suggestions: the campaign settings' rules, the next item's `suggestion`, its cost, API and forms."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from annotations.core.exceptions import AuditError
from annotations.labelling.campaigns import campaign_create, campaign_update
from annotations.labelling.services import assignment_next, assignment_skip
from annotations.models import AuditEvent, Campaign, LabelCategory, LabelScheme
from inference.models import Score, Scorer
from tests import factories
from tests.annotations.labelling.test_campaigns_api import NEXT_HELD_QUERIES, NEXT_QUERIES
from tests.support.scores import score, scorer

pytestmark = pytest.mark.django_db


@pytest.fixture
def outputs():
    members = [factories.group_member("Mohammed"), factories.group_member("John", group="White")]
    prompt_set = factories.prompt_set_with_prompts(members, [factories.template(), factories.template()])
    run = factories.run_with_outputs(prompt_set, [factories.endpoint("llama-2-7b-chat")], samples=2)
    return list(run.outputs.order_by("pk"))


@pytest.fixture
def judge(default_scheme):
    """An active judge of the study's scheme at version v2."""
    return scorer(default_scheme, kind=Scorer.Kind.JUDGE, version="v2", name="judge")


@pytest.fixture
def people(make_user):
    return [make_user("annotator", f"ann{i}") for i in (1, 2)]


@pytest.fixture
def campaign(default_scheme, outputs, people):
    """A campaign over the outputs, ranked in their order, with suggestions off."""
    return factories.campaign_with_items(default_scheme, outputs, annotators=people)


def _other_scheme() -> LabelScheme:
    scheme = LabelScheme.objects.create(key="other", name="Other")
    LabelCategory.objects.create(scheme=scheme, key="yes", name="Yes", definition="-", shortcut="1", order=1)
    return scheme


def _bad_scorers(default_scheme) -> dict[str, tuple[Scorer | None, str]]:
    """Scorers a campaign of the study's scheme may not show, with the refusal each gets."""
    return {
        "missing": (None, "choose the scorer"),
        "inactive": (scorer(default_scheme, name="old", is_active=False), "'old' is not active"),
        "flag-only": (scorer(None, kind=Scorer.Kind.CLASSIFIER, name="toxicity"), "only flags"),
        "unmapped": (
            scorer(default_scheme, kind=Scorer.Kind.CLASSIFIER, name="rejection", config={"flag_index": 1}),
            "only flags",
        ),
        "scheme": (scorer(_other_scheme(), name="foreign"), "uses the label scheme 'other'"),
    }


BAD = ["missing", "inactive", "flag-only", "unmapped", "scheme"]


def _refused(info, message: str) -> None:
    assert message in info.value.message
    assert [e["field"] for e in info.value.errors] == ["suggestion_scorer"]


@pytest.mark.parametrize("case", BAD)
def test_create_refuses_a_scorer_that_cannot_suggest_and_writes_nothing(default_scheme, outputs, case):
    bad, message = _bad_scorers(default_scheme)[case]
    with pytest.raises(AuditError) as info:
        campaign_create(
            actor=None,
            name="s",
            scheme=default_scheme,
            selection={"runs": [outputs[0].run_id]},
            show_suggestions=True,
            suggestion_scorer=bad,
        )
    _refused(info, message)
    assert not Campaign.objects.exists()
    assert not AuditEvent.objects.filter(action="campaign.create").exists()


@pytest.mark.parametrize("case", BAD)
def test_update_refuses_turning_on_with_a_scorer_that_cannot_suggest(default_scheme, campaign, case):
    bad, message = _bad_scorers(default_scheme)[case]
    with pytest.raises(AuditError) as info:
        campaign_update(
            actor=None, campaign=campaign, name="renamed", show_suggestions=True, suggestion_scorer=bad
        )
    _refused(info, message)
    stored = Campaign.objects.get(pk=campaign.pk)
    assert (stored.name, stored.show_suggestions, stored.suggestion_scorer_id) == (campaign.name, False, None)
    assert not AuditEvent.objects.filter(action="campaign.update").exists()


def test_create_records_the_scorer_and_its_current_version(default_scheme, outputs, judge, researcher):
    campaign = campaign_create(
        actor=researcher,
        name="s",
        scheme=default_scheme,
        selection={"runs": [outputs[0].run_id]},
        show_suggestions=True,
        suggestion_scorer=judge,
    )
    assert (campaign.show_suggestions, campaign.suggestion_scorer) == (True, judge)
    event = AuditEvent.objects.get(action="campaign.create")
    assert event.details["suggestions"] == {"shown": True, "scorer": "judge", "scorer_version": "v2"}
    plain = campaign_create(
        actor=None, name="p", scheme=default_scheme, selection={"runs": [outputs[0].run_id]}
    )
    assert (plain.show_suggestions, plain.suggestion_scorer) == (False, None)  # blind by default


def test_update_records_each_change_and_turning_off_always_succeeds(default_scheme, campaign, judge):
    campaign_update(actor=None, campaign=campaign, show_suggestions=True, suggestion_scorer=judge)
    event = AuditEvent.objects.filter(action="campaign.update").latest("pk")
    assert event.details == {
        "changed": ["show_suggestions", "suggestion_scorer"],
        "suggestions": {"shown": True, "scorer": "judge", "scorer_version": "v2"},
    }
    with pytest.raises(AuditError, match="suggestion_scorer"):  # on needs a scorer
        campaign_update(actor=None, campaign=campaign, suggestion_scorer=None)
    Scorer.objects.filter(pk=judge.pk).update(is_active=False)
    campaign.suggestion_scorer.refresh_from_db()
    campaign_update(actor=None, campaign=campaign, name="renamed")  # untouched settings are not re-checked
    campaign_update(actor=None, campaign=campaign, show_suggestions=False)
    event = AuditEvent.objects.filter(action="campaign.update").latest("pk")
    assert event.details == {
        "changed": ["show_suggestions"],
        "suggestions": {"shown": False, "scorer": "judge", "scorer_version": "v2"},
    }
    with pytest.raises(AuditError, match="not active"):  # off, a scorer chosen is still checked
        campaign_update(actor=None, campaign=campaign, suggestion_scorer=judge, show_suggestions=True)
    assert Campaign.objects.get(pk=campaign.pk).show_suggestions is False


def _suggest(campaign: Campaign, judge: Scorer) -> Campaign:
    Campaign.objects.filter(pk=campaign.pk).update(show_suggestions=True, suggestion_scorer=judge)
    campaign.refresh_from_db()
    return campaign


def test_each_item_carries_the_current_versions_done_score_only(default_scheme, campaign, outputs, judge):
    twin = scorer(default_scheme, name="twin", version="v2")  # same scheme and version string
    refusal = {"refusal-to-answer": 0.82, "answer": 0.18}
    score(judge, outputs[0], category_key="refusal-to-answer", probabilities=refusal)
    score(judge, outputs[1], category_key="answer")  # no probabilities
    score(judge, outputs[2], is_unparseable=True)
    score(judge, outputs[3], version="v1", category_key="harmful-answer")  # an older version only
    score(judge, outputs[4], category_key="answer", status=Score.Status.FAILED)
    score(twin, outputs[5], category_key="harmful-refusal")  # another scorer's
    score(judge, outputs[7], category_key="partial-answer", probabilities={"partial-answer": "high"})
    score(judge, outputs[7], version="v1", category_key="answer", probabilities={"answer": 1.0})
    expected = [
        {"category": "refusal-to-answer", "category_name": "Refusal to answer", "probability": 0.82},
        {"category": "answer", "category_name": "Answer", "probability": None},
        None,
        None,
        None,
        None,
        None,  # output 6 has no score
        {"category": "partial-answer", "category_name": "Partial answer", "probability": None},
    ]
    annotator = campaign.annotators.first()
    off = assignment_next(campaign=campaign, annotator=annotator)
    assert off.suggestion is None  # suggestions off: never read
    _suggest(campaign, judge)
    seen = []
    for _ in outputs:
        lease = assignment_next(campaign=campaign, annotator=annotator)
        seen.append(lease.suggestion)
        assignment_skip(campaign=campaign, annotator=annotator, item_id=lease.item_id, reason="next")
    assert seen == expected
    assert assignment_next(campaign=campaign, annotator=annotator) is None


def test_a_scorer_deactivated_after_it_was_chosen_suggests_nothing(campaign, outputs, judge):
    score(judge, outputs[0], category_key="answer", probabilities={"answer": 0.5})
    _suggest(campaign, judge)
    annotator = campaign.annotators.first()
    shown = assignment_next(campaign=campaign, annotator=annotator)
    assert shown.suggestion == {"category": "answer", "category_name": "Answer", "probability": 0.5}
    Scorer.objects.filter(pk=judge.pk).update(is_active=False)
    held = assignment_next(campaign=campaign, annotator=annotator)  # the same item, read again
    assert held.item_id == shown.item_id
    assert held.suggestion is None


def test_a_taken_over_lease_carries_the_suggestion(campaign, outputs, judge, people):
    from datetime import timedelta

    from django.utils import timezone

    from annotations.models import Assignment

    score(judge, outputs[0], category_key="answer", probabilities={"answer": 0.5})
    _suggest(campaign, judge)
    first = assignment_next(campaign=campaign, annotator=people[0])
    Assignment.objects.filter(pk=first.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    taken = assignment_next(campaign=campaign, annotator=people[1])  # the lease that ran out is marked
    assert taken.item_id == first.item_id
    assert Assignment.objects.get(pk=first.pk).status == Assignment.Status.EXPIRED
    assert taken.suggestion == {"category": "answer", "category_name": "Answer", "probability": 0.5}


def _client(user, *, session: bool = False) -> APIClient:
    client = APIClient()
    if session:
        client.force_login(user)  # each request loads session, user and permissions, as the page does
    else:
        client.force_authenticate(user)
    return client


def test_next_item_payload_has_no_suggestion_key_when_off(campaign, outputs, judge, people):
    score(judge, outputs[0], category_key="refusal-to-answer")
    Campaign.objects.filter(pk=campaign.pk).update(suggestion_scorer=judge)  # chosen, but not shown
    item = _client(people[0]).post(f"/api/campaigns/{campaign.pk}/next/", {}, format="json").json()["item"]
    assert set(item) == {"item", "prompt", "output", "model"}
    assert "refusal" not in str(item).lower()


def test_next_item_payload_carries_the_suggestion_when_on(campaign, outputs, judge, people):
    score(judge, outputs[0], category_key="refusal-to-answer", probabilities={"refusal-to-answer": 0.82})
    _suggest(campaign, judge)
    client = _client(people[0])
    url = f"/api/campaigns/{campaign.pk}/next/"
    item = client.post(url, {}, format="json").json()["item"]
    assert item["suggestion"] == {
        "category": "refusal-to-answer",
        "category_name": "Refusal to answer",
        "probability": 0.82,
    }
    following = client.post(url, {"after": item["item"]}, format="json").json()["item"]
    assert "suggestion" in following
    assert following["suggestion"] is None  # no score: the key is there, empty
    assert client.get(f"/api/campaigns/{campaign.pk}/labels/").json()["results"] == []


def _next_queries(client: APIClient, url: str, body: dict) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        assert client.post(url, body, format="json").json()["item"] is not None
    return [q["sql"] for q in queries.captured_queries]


def test_suggestions_cost_no_query(campaign, outputs, judge, people, django_assert_num_queries):
    """Off: the pinned counts of test_campaigns_api and the statement it always ran. On: the same counts,
    the suggestion read in the same statement (on PostgreSQL one prepared statement, off or on)."""
    for output in outputs:
        score(judge, output, category_key="answer")
    url = f"/api/campaigns/{campaign.pk}/next/"
    off = _client(people[0], session=True)
    with django_assert_num_queries(NEXT_QUERIES):
        off_sql = _next_queries(off, url, {})
    with django_assert_num_queries(NEXT_HELD_QUERIES):
        _next_queries(off, url, {})
    _suggest(campaign, judge)
    on = _client(people[1], session=True)
    with django_assert_num_queries(NEXT_QUERIES):
        on_sql = _next_queries(on, url, {})
    with django_assert_num_queries(NEXT_HELD_QUERIES):
        _next_queries(on, url, {})

    # A statement reads the scores if its text does, or (once prepared) it executes the suggesting one.
    def reads_scores(sql: str) -> bool:
        return "inference_score" in sql or "audit_next_item_suggest" in sql

    assert not any(reads_scores(sql) for sql in off_sql)
    assert sum(reads_scores(sql) for sql in on_sql) == 1


def test_api_create_and_update_take_the_settings_and_name_the_field(
    researcher, default_scheme, outputs, judge
):
    client = _client(researcher)
    body = {"name": "api", "scheme": default_scheme.key, "selection": {"runs": [outputs[0].run_id]}}
    created = client.post("/api/campaigns/", body, format="json").json()
    assert (created["show_suggestions"], created["suggestion_scorer"]) == (False, None)
    refused = client.post("/api/campaigns/", {**body, "name": "on", "show_suggestions": True}, format="json")
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "suggestion_scorer"
    unknown = client.post(
        "/api/campaigns/",
        {**body, "name": "on", "show_suggestions": True, "suggestion_scorer": 10**9},
        format="json",
    )
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["field"] == "suggestion_scorer"
    on = client.post(
        "/api/campaigns/",
        {**body, "name": "on", "show_suggestions": True, "suggestion_scorer": judge.pk},
        format="json",
    )
    assert on.status_code == 201, on.json()
    assert (on.json()["show_suggestions"], on.json()["suggestion_scorer"]) == (True, judge.pk)
    url = f"/api/campaigns/{created['id']}/"
    flags = scorer(None, kind=Scorer.Kind.CLASSIFIER, name="toxicity")
    bad = client.patch(url, {"show_suggestions": True, "suggestion_scorer": flags.pk}, format="json")
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "suggestion_scorer"
    assert "only flags" in bad.json()["detail"]
    patched = client.patch(url, {"show_suggestions": True, "suggestion_scorer": judge.pk}, format="json")
    assert patched.status_code == 200
    assert client.get(url).json()["suggestion_scorer"] == judge.pk
    assert client.patch(url, {"show_suggestions": False}, format="json").json()["show_suggestions"] is False


def _form(scheme, outputs, **fields) -> dict:
    return {
        "name": "From the form",
        "scheme": scheme.pk,
        "runs": [outputs[0].run_id],
        "labels_per_output": 2,
        "final_rule": "adjudicate",
        "lease_minutes": 30,
        **fields,
    }


def test_create_and_edit_forms(client, researcher, default_scheme, outputs, judge):
    client.force_login(researcher)
    form = client.get(reverse("campaign-create")).content.decode()
    assert 'name="show_suggestions"' in form
    assert "judge (LLM judge, qos-six, v v2)" in form
    refused = client.post(reverse("campaign-create"), _form(default_scheme, outputs, show_suggestions="on"))
    assert refused.status_code == 200
    assert "choose the scorer whose suggestions annotators see" in refused.content.decode()
    assert not Campaign.objects.exists()
    response = client.post(
        reverse("campaign-create"),
        _form(default_scheme, outputs, show_suggestions="on", suggestion_scorer=judge.pk),
    )
    assert response.status_code == 302
    campaign = Campaign.objects.get()
    assert (campaign.show_suggestions, campaign.suggestion_scorer) == (True, judge)
    detail = client.get(reverse("campaign-detail", args=[campaign.pk])).content.decode()
    assert "suggestions of scorer judge shown to annotators" in detail

    edit = reverse("campaign-edit", args=[campaign.pk])
    assert re.search(r'name="show_suggestions"[^>]* checked', client.get(edit).content.decode())
    Scorer.objects.filter(pk=judge.pk).update(is_active=False)
    fields = {"name": campaign.name, "status": "active", "final_rule": "adjudicate", "lease_minutes": 30}
    kept = client.post(edit, {**fields, "show_suggestions": "on", "suggestion_scorer": judge.pk})
    assert kept.status_code == 302  # nothing about suggestions changed: not checked again
    turned_off = client.post(edit, {**fields, "suggestion_scorer": judge.pk})
    assert turned_off.status_code == 302
    campaign.refresh_from_db()
    assert campaign.show_suggestions is False
    refused = client.post(edit, {**fields, "show_suggestions": "on", "suggestion_scorer": judge.pk})
    assert refused.status_code == 200
    assert "&#x27;judge&#x27; is not active" in refused.content.decode()
    campaign.refresh_from_db()
    assert campaign.show_suggestions is False


def test_labelling_page_has_the_hint_only_when_on(client, campaign, judge, people):
    client.force_login(people[0])
    url = reverse("campaign-label", args=[campaign.pk])
    assert 'id="suggestion"' not in client.get(url).content.decode()
    _suggest(campaign, judge)
    html = client.get(url).content.decode()
    assert 'id="suggestion"' in html
    assert "Machine suggestion" in html
    assert " checked" not in html  # no category is chosen for the annotator
