"""Campaign CRUD, labelling and adjudication over the JSON API: access rules, blind payloads, query counts."""

import pytest
from django.db import connection
from rest_framework.test import APIClient

from annotations.models import AuditEvent, Campaign, CampaignItem, Label
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def run():
    members = [factories.group_member("Mohammed"), factories.group_member("John", group="White")]
    prompt_set = factories.prompt_set_with_prompts(members, [factories.template(), factories.template()])
    return factories.run_with_outputs(
        prompt_set, [factories.endpoint("llama-2-7b-chat")], samples=2, text="<script>alert(1)</script>"
    )


@pytest.fixture
def people(make_user):
    return [make_user("annotator", f"ann{i}") for i in (1, 2)]


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def campaign(default_scheme, run, people):
    return factories.campaign_with_items(default_scheme, run.outputs.order_by("pk"), annotators=people)


def test_researcher_creates_campaign_with_selection_and_gold(researcher, default_scheme, run, people):
    gold_output = run.outputs.order_by("pk").first()
    body = {
        "name": "Study 1",
        "scheme": default_scheme.key,
        "selection": {"runs": [run.pk], "sample": 5},
        "annotators": ["ann1", "ann2"],
        "guidelines": "# Rules\n<script>x()</script>**bold**",
        "gold": [{"output": gold_output.pk, "category": "answer"}],
        "seed": 7,
    }
    response = _client(researcher).post("/api/campaigns/", body, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["labels_per_output"] == 2  # the study's default
    assert data["show_model_name"] is False
    assert sorted(data["annotators"]) == ["ann1", "ann2"]
    assert "<script>" not in data["guidelines_html"]
    assert "<strong>bold</strong>" in data["guidelines_html"]
    campaign = Campaign.objects.get(pk=data["id"])
    items = campaign.items.all()
    assert 5 <= items.count() <= 6  # the sample plus the gold output if the sample missed it
    assert items.get(output=gold_output).gold_category.key == "answer"
    assert sorted(items.values_list("rank", flat=True)) == list(range(items.count()))
    assert AuditEvent.objects.filter(action="campaign.create", target_id=str(campaign.pk)).exists()


def test_create_rejects_bad_input_naming_the_field(researcher, default_scheme, run):
    client = _client(researcher)
    bad = client.post(
        "/api/campaigns/",
        {
            "name": "x",
            "scheme": default_scheme.key,
            "selection": {"runs": [run.pk]},
            "annotators": ["nobody"],
        },
        format="json",
    )
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "annotators"
    gold = client.post(
        "/api/campaigns/",
        {
            "name": "y",
            "scheme": default_scheme.key,
            "selection": {"runs": [run.pk]},
            "gold": [{"output": 10**9, "category": "answer"}, {"output": 1, "category": "nope"}],
        },
        format="json",
    )
    assert gold.status_code == 400
    assert {(e["row"], e["field"]) for e in gold.json()["errors"]} >= {(2, "category")}
    empty = client.post(
        "/api/campaigns/", {"name": "z", "scheme": default_scheme.key, "selection": {}}, format="json"
    )
    assert empty.status_code == 400
    assert not Campaign.objects.exists()


def test_annotators_cannot_manage_campaigns(people, campaign):
    client = _client(people[0])
    assert client.post("/api/campaigns/", {}, format="json").status_code == 403
    assert client.get(f"/api/campaigns/{campaign.pk}/").status_code == 403
    listed = client.get("/api/campaigns/").json()["results"]
    assert [c["id"] for c in listed] == [campaign.pk]
    assert "annotators" not in listed[0]


def test_update_and_delete(researcher, campaign, people):
    client = _client(researcher)
    response = client.patch(
        f"/api/campaigns/{campaign.pk}/", {"show_model_name": True, "annotators": ["ann1"]}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["annotators"] == ["ann1"]
    assert (
        client.patch(f"/api/campaigns/{campaign.pk}/", {"status": "nope"}, format="json").status_code == 400
    )
    lease = _client(people[0]).post(f"/api/campaigns/{campaign.pk}/next/", {}, format="json").json()
    _client(people[0]).post(
        f"/api/campaigns/{campaign.pk}/labels/",
        {"item": lease["item"]["item"], "category": "answer"},
        format="json",
    )
    refused = client.delete(f"/api/campaigns/{campaign.pk}/")
    assert refused.status_code == 400
    assert "has labels" in refused.json()["detail"]


def test_delete_campaign_without_labels(researcher, campaign):
    assert _client(researcher).delete(f"/api/campaigns/{campaign.pk}/").status_code == 204
    assert not Campaign.objects.filter(pk=campaign.pk).exists()


def test_unassigned_annotator_gets_404(make_user, campaign):
    stranger = _client(make_user("annotator", "stranger"))
    for method, path in [
        ("post", "next/"),
        ("get", "progress/"),
        ("get", "labels/"),
        ("post", "labels/"),
        ("post", "skip/"),
    ]:
        response = getattr(stranger, method)(f"/api/campaigns/{campaign.pk}/{path}", {}, format="json")
        assert response.status_code == 404, path
    assert stranger.post("/api/campaigns/999999/next/", {}, format="json").status_code == 404


def test_labelling_flow_is_blind(campaign, people):
    a, b = (_client(p) for p in people)
    lease = a.post(f"/api/campaigns/{campaign.pk}/next/", {}, format="json").json()
    item = lease["item"]
    assert item["output"] == "<script>alert(1)</script>"  # raw text: the page shows it with textContent
    assert item["model"] is None  # hidden by default
    assert set(item) == {"item", "prompt", "output", "model"}
    response = a.post(
        f"/api/campaigns/{campaign.pk}/labels/",
        {"item": item["item"], "category": "refusal-to-answer", "note": "my note"},
        format="json",
    )
    assert response.status_code == 201
    # b gets the same output next (nearest completion) but never sees a's label or note.
    lease_b = b.post(f"/api/campaigns/{campaign.pk}/next/", {}, format="json").json()
    assert lease_b["item"]["item"] == item["item"]
    assert "my note" not in str(lease_b)
    assert b.get(f"/api/campaigns/{campaign.pk}/labels/").json()["results"] == []
    assert b.get(f"/api/campaigns/{campaign.pk}/labels/{item['item']}/").status_code == 404
    mine = a.get(f"/api/campaigns/{campaign.pk}/labels/{item['item']}/").json()
    assert (mine["category"], mine["note"]) == ("refusal-to-answer", "my note")
    changed = a.patch(
        f"/api/campaigns/{campaign.pk}/labels/{item['item']}/", {"category": "harmful-refusal"}, format="json"
    )
    assert changed.json()["category"] == "harmful-refusal"
    assert changed.json()["note"] == "my note"
    progress = a.get(f"/api/campaigns/{campaign.pk}/progress/").json()
    assert progress["mine"] == {"labelled": 1, "skipped": 0}
    assert progress["campaign"]["labels"] == 1


def test_model_name_shown_when_campaign_says_so(campaign, people):
    campaign.show_model_name = True
    campaign.save()
    lease = _client(people[0]).post(f"/api/campaigns/{campaign.pk}/next/", {}, format="json").json()
    assert lease["item"]["model"] == "llama-2-7b-chat"


def test_closed_campaign_refuses_labelling(campaign, people):
    campaign.status = Campaign.Status.CLOSED
    campaign.save()
    response = _client(people[0]).post(f"/api/campaigns/{campaign.pk}/next/", {}, format="json")
    assert response.status_code == 400
    assert "closed" in response.json()["detail"]


def test_skip_needs_reason(campaign, people):
    client = _client(people[0])
    item = client.post(f"/api/campaigns/{campaign.pk}/next/", {}, format="json").json()["item"]["item"]
    assert (
        client.post(f"/api/campaigns/{campaign.pk}/skip/", {"item": item}, format="json").status_code == 400
    )
    ok = client.post(
        f"/api/campaigns/{campaign.pk}/skip/", {"item": item, "reason": "unclear"}, format="json"
    )
    assert ok.status_code == 200
    assert (
        client.post(f"/api/campaigns/{campaign.pk}/next/", {}, format="json").json()["item"]["item"] != item
    )


def test_adjudication_over_api(campaign, people, researcher, annotator):
    a, b = (_client(p) for p in people)
    item = a.post(f"/api/campaigns/{campaign.pk}/next/", {}, format="json").json()["item"]["item"]
    a.post(
        f"/api/campaigns/{campaign.pk}/labels/",
        {"item": item, "category": "answer", "note": "fine"},
        format="json",
    )
    b.post(f"/api/campaigns/{campaign.pk}/next/", {}, format="json")
    b.post(
        f"/api/campaigns/{campaign.pk}/labels/", {"item": item, "category": "harmful-answer"}, format="json"
    )
    # Annotators cannot see the queue.
    assert a.get(f"/api/campaigns/{campaign.pk}/adjudication/").status_code == 403
    queue = _client(researcher).get(f"/api/campaigns/{campaign.pk}/adjudication/").json()["results"]
    assert [row["item"] for row in queue] == [item]
    assert {(lb["annotator"], lb["category"], lb["note"]) for lb in queue[0]["labels"]} == {
        ("ann1", "answer", "fine"),
        ("ann2", "harmful-answer", ""),
    }
    done = _client(researcher).post(
        f"/api/campaigns/{campaign.pk}/adjudication/{item}/",
        {"category": "harmful-answer", "reason": "stereotype in the completion"},
        format="json",
    )
    assert done.status_code == 200
    assert CampaignItem.objects.get(pk=item).status == "adjudicated"
    stats = _client(researcher).get(f"/api/campaigns/{campaign.pk}/stats/").json()
    assert stats["counts"]["adjudicated"] == 1
    assert {row["annotator"]: row["done"] for row in stats["annotators"]} == {"ann1": 1, "ann2": 1}


def test_gold_accuracy_per_annotator(default_scheme, run, people, researcher):
    outputs = list(run.outputs.order_by("pk"))
    campaign = factories.campaign_with_items(
        default_scheme, outputs[:2], labels_per_output=1, annotators=people
    )
    answer = default_scheme.categories.get(key="answer")
    CampaignItem.objects.filter(campaign=campaign).update(is_gold=True, gold_category=answer)
    client = _client(people[0])
    for key in ("answer", "partial-answer"):
        item = client.post(f"/api/campaigns/{campaign.pk}/next/", {}, format="json").json()["item"]["item"]
        client.post(f"/api/campaigns/{campaign.pk}/labels/", {"item": item, "category": key}, format="json")
    rows = {
        r["annotator"]: r
        for r in _client(researcher).get(f"/api/campaigns/{campaign.pk}/stats/").json()["annotators"]
    }
    assert (rows["ann1"]["gold_labelled"], rows["ann1"]["gold_correct"], rows["ann1"]["gold_accuracy"]) == (
        2,
        1,
        0.5,
    )
    assert rows["ann2"]["gold_accuracy"] is None
    campaign.annotators.remove(people[0])  # removed later: their work still counts on the campaign page
    rows = _client(researcher).get(f"/api/campaigns/{campaign.pk}/stats/").json()["annotators"]
    assert [(r["annotator"], r["done"]) for r in rows] == [("ann1", 2), ("ann2", 0)]


def _session_client(user) -> APIClient:
    """A client logged in through a session, so each request loads session, user and permissions."""
    client = APIClient()
    client.force_login(user)
    return client


# Per request: session, user, the user's roles and permissions (one query), the campaign (4).
# On PostgreSQL next and submit are one statement each, in autocommit. Next: the held lease, else the next
# candidate (partially labelled first, else untouched) with my lease on it and its texts. Submit: the
# annotations_label_submit function. On SQLite each runs in a transaction (SAVEPOINT + RELEASE in tests):
# next is held lease, candidate, lease insert and texts (6), or held lease and texts (4); submit is a read
# of the item, category and my lease, then lease, label, history and item (7).
POSTGRES = connection.vendor == "postgresql"
NEXT_QUERIES = 4 + (1 if POSTGRES else 6)
NEXT_HELD_QUERIES = 4 + (1 if POSTGRES else 4)
SUBMIT_QUERIES = 4 + (1 if POSTGRES else 7)


def test_next_and_submit_run_a_fixed_number_of_queries(campaign, people, django_assert_max_num_queries):
    url = f"/api/campaigns/{campaign.pk}/"
    client = _session_client(people[0])
    for _ in range(3):  # first, later and second-label submissions cost the same
        with django_assert_max_num_queries(NEXT_QUERIES):
            item = client.post(url + "next/", {}, format="json").json()["item"]["item"]
        with django_assert_max_num_queries(NEXT_HELD_QUERIES):  # idempotent: returns the held lease
            assert client.post(url + "next/", {}, format="json").json()["item"]["item"] == item
        with django_assert_max_num_queries(SUBMIT_QUERIES):
            client.post(url + "labels/", {"item": item, "category": "answer"}, format="json")
    other = _session_client(people[1])
    with django_assert_max_num_queries(NEXT_QUERIES):
        item = other.post(url + "next/", {}, format="json").json()["item"]["item"]
    with django_assert_max_num_queries(SUBMIT_QUERIES):  # completing the item costs no more
        other.post(url + "labels/", {"item": item, "category": "answer"}, format="json")
    assert CampaignItem.objects.get(pk=item).status == "complete"
    assert Label.objects.count() == 4


def test_with_an_api_token_next_and_submit_read_the_token_user_and_roles_in_one_query(
    campaign, people, django_assert_max_num_queries
):
    """annotations/core/tokens.py: the token, its user and their roles and permissions are one statement,
    so a token request costs the campaign and the labelling statement beside it (3 on PostgreSQL)."""
    from annotations.core.tokens import token_issue

    url = f"/api/campaigns/{campaign.pk}/"
    client = APIClient(HTTP_AUTHORIZATION=f"Token {token_issue(user=people[0])[1]}")
    client.post(url + "skip/", {}, format="json")  # the token's last use is written (once a minute)
    extra = NEXT_QUERIES - 4
    for _ in range(2):
        with django_assert_max_num_queries(2 + extra):
            item = client.post(url + "next/", {}, format="json").json()["item"]["item"]
        with django_assert_max_num_queries(2 + SUBMIT_QUERIES - 4):
            response = client.post(url + "labels/", {"item": item, "category": "answer"}, format="json")
        assert response.status_code == 201
    assert Label.objects.filter(annotator=people[0]).count() == 2


def test_out_of_range_ids_are_refused_not_crashing(campaign, people):
    client = _client(people[0])
    url = f"/api/campaigns/{campaign.pk}/"
    for path, body in [
        ("next/", {"after": 2**70}),
        ("labels/", {"item": 2**70, "category": "answer"}),
        ("skip/", {"item": -1, "reason": "x"}),
    ]:
        response = client.post(url + path, body, format="json")
        assert response.status_code == 400, path
        assert response.json()["errors"][0]["field"] in {"after", "item"}


def test_counts_treat_held_items_as_in_progress(campaign, people, researcher):
    from datetime import timedelta

    from django.utils import timezone

    from annotations.labelling.services import assignment_next
    from annotations.models import Assignment

    url = f"/api/campaigns/{campaign.pk}/stats/"
    total = campaign.items.count()
    lease = assignment_next(campaign=campaign, annotator=people[0])
    counts = _client(researcher).get(url).json()["counts"]
    assert (counts["unlabelled"], counts["in_progress"]) == (total - 1, 1)
    Assignment.objects.filter(pk=lease.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    counts = _client(researcher).get(url).json()["counts"]
    assert (counts["unlabelled"], counts["in_progress"]) == (total, 0)


def test_campaign_for_annotator_reads_what_the_orm_reads(campaign, people, make_user):
    from annotations.core.exceptions import NotFoundError
    from annotations.labelling.selectors import campaign_for_annotator

    Campaign.objects.filter(pk=campaign.pk).update(selection={"runs": [1], "sample": 5})
    expected = Campaign.objects.select_related("scheme").get(pk=campaign.pk)
    got = campaign_for_annotator(user=people[0], campaign_id=campaign.pk)
    for field in Campaign._meta.concrete_fields:
        assert getattr(got, field.attname) == getattr(expected, field.attname), field.name
    assert got.scheme.key == expected.scheme.key
    assert got.scheme.created_at == expected.scheme.created_at
    with pytest.raises(NotFoundError):
        campaign_for_annotator(user=make_user("annotator", "outsider"), campaign_id=campaign.pk)
