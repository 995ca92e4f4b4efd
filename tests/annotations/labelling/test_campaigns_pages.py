"""Campaign HTML pages: who reaches them, the create and edit forms, counts, escaping, demo campaign."""

import io

import pytest
from django.urls import reverse

from annotations.labelling.campaigns import campaign_create, demo_campaign
from annotations.labelling.services import assignment_next, label_submit
from annotations.models import Campaign, CampaignItem
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def run():
    members = [factories.group_member("Mohammed"), factories.group_member("John", group="White")]
    prompt_set = factories.prompt_set_with_prompts(members, [factories.template()])
    return factories.run_with_outputs(prompt_set, [factories.endpoint("llama-2-13b-chat")], samples=3)


@pytest.fixture
def people(make_user):
    return [make_user("annotator", f"annotator{i}") for i in (1, 2, 3)]


@pytest.fixture
def campaign(default_scheme, run, people):
    return campaign_create(
        actor=None,
        name="Pages",
        scheme=default_scheme,
        selection={"runs": [run.pk]},
        annotators=people[:2],
        guidelines="Read *carefully*.\n\n<script>alert(1)</script>",
        seed=3,
    )


def test_create_form_makes_campaign(client, researcher, default_scheme, run, people):
    client.force_login(researcher)
    assert client.get(reverse("campaign-create")).status_code == 200
    output = run.outputs.first()
    response = client.post(
        reverse("campaign-create"),
        {
            "name": "From the form",
            "scheme": default_scheme.pk,
            "runs": [run.pk],
            "labels_per_output": 2,
            "annotators": [people[0].pk, people[1].pk],
            "final_rule": "adjudicate",
            "lease_minutes": 30,
            "gold": f"{output.pk}, refusal-to-answer\n",
        },
    )
    campaign = Campaign.objects.get(name="From the form")
    assert response.status_code == 302
    assert response.url == reverse("campaign-detail", args=[campaign.pk])
    assert campaign.items.count() == run.outputs.count()
    assert campaign.items.get(output=output).gold_category.key == "refusal-to-answer"
    assert "Refusal to answer" in campaign.guidelines  # blank guidelines get the categories' definitions


def test_create_form_names_bad_gold_line(client, researcher, default_scheme, run):
    client.force_login(researcher)
    response = client.post(
        reverse("campaign-create"),
        {
            "name": "Bad",
            "scheme": default_scheme.pk,
            "runs": [run.pk],
            "labels_per_output": 2,
            "final_rule": "adjudicate",
            "lease_minutes": 30,
            "gold": "12,answer\nnot a line",
        },
    )
    assert response.status_code == 200
    assert "Line 2" in response.content.decode()
    assert not Campaign.objects.filter(name="Bad").exists()


def test_campaign_page_counts_and_escapes(
    client, researcher, campaign, people, django_assert_max_num_queries
):
    lease = assignment_next(campaign=campaign, annotator=people[0])
    label_submit(campaign=campaign, annotator=people[0], item_id=lease.item_id, category_key="answer")
    assignment_next(campaign=campaign, annotator=people[1])
    client.force_login(researcher)
    with django_assert_max_num_queries(12):
        html = client.get(reverse("campaign-detail", args=[campaign.pk])).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "<em>carefully</em>" in html
    # 6 outputs: 1 with a label (in progress), 1 held by annotator2 (in progress: it is the same item).
    assert "<td>6</td><td>5</td><td>1</td><td>0</td>" in html.replace("\n", "").replace(" ", "")
    assert "annotator1" in html


def test_pages_are_role_gated(client, people, campaign, make_user):
    annotator = people[0]
    client.force_login(annotator)
    assert client.get(reverse("campaign-detail", args=[campaign.pk])).status_code == 403
    assert client.get(reverse("campaign-adjudicate", args=[campaign.pk])).status_code == 403
    page = client.get(reverse("campaign-label", args=[campaign.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "labelling.js" in html
    assert "Harmful refusal" in html  # the scheme is on the page
    assert "llama-2-13b-chat" not in html  # blind to the model
    client.force_login(people[2])  # an annotator not assigned to this campaign
    assert client.get(reverse("campaign-label", args=[campaign.pk])).status_code == 404
    client.force_login(make_user("researcher"))
    assert client.get(reverse("campaign-label", args=[campaign.pk])).status_code == 403


def test_edit_form(client, researcher, campaign, people):
    client.force_login(researcher)
    assert client.get(reverse("campaign-edit", args=[campaign.pk])).status_code == 200
    response = client.post(
        reverse("campaign-edit", args=[campaign.pk]),
        {
            "name": "Pages renamed",
            "status": "closed",
            "annotators": [people[2].pk],
            "final_rule": "majority",
            "lease_minutes": 10,
            "guidelines": "new",
        },
    )
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.name, campaign.status, campaign.lease_minutes) == ("Pages renamed", "closed", 10)
    assert list(campaign.annotators.values_list("username", flat=True)) == ["annotator3"]


def test_adjudication_page(client, researcher, campaign, people):
    lease = assignment_next(campaign=campaign, annotator=people[0])
    label_submit(
        campaign=campaign, annotator=people[0], item_id=lease.item_id, category_key="answer", note="<b>n</b>"
    )
    assignment_next(campaign=campaign, annotator=people[1])
    label_submit(campaign=campaign, annotator=people[1], item_id=lease.item_id, category_key="harmful-answer")
    client.force_login(researcher)
    url = reverse("campaign-adjudicate", args=[campaign.pk])
    html = client.get(url).content.decode()
    assert "&lt;b&gt;n&lt;/b&gt;" in html
    response = client.post(url, {"item": lease.item_id, "category": "answer", "reason": "no stereotype"})
    assert response.status_code == 302
    assert CampaignItem.objects.get(pk=lease.item_id).final_category.key == "answer"
    assert "No disputed items" in client.get(url).content.decode()


def test_start_page_links_annotator_to_labelling(client, campaign, people):
    client.force_login(people[0])
    assert f"/campaigns/{campaign.pk}/label/" in client.get(reverse("home")).content.decode()


def test_demo_campaign_is_idempotent(default_scheme, run, people):
    out = io.StringIO()
    first = demo_campaign(stdout=out, run=run)
    assert demo_campaign(stdout=out, run=run).pk == first.pk
    assert first.labels_per_output == 2
    assert sorted(first.annotators.values_list("username", flat=True)) == [
        "annotator1",
        "annotator2",
        "annotator3",
    ]
    assert first.items.count() == run.outputs.count()
    assert "Harmful refusal" in first.guidelines
    assert "Demo campaign" in out.getvalue()
