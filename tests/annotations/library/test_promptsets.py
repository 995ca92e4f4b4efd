"""Expanding templates x group members into prompt sets: order, keys, duplicates, versions, pages and API."""

import io

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from annotations.core.exceptions import AuditError
from annotations.library.promptsets import (
    promptset_build,
    promptset_freeze,
    promptset_plan,
    promptset_revise,
)
from annotations.library.services import demo_library
from annotations.models import AuditEvent, Prompt, PromptSet
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Users are made per test; the default PBKDF2 hasher would spend most of the run hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def starter() -> PromptSet:
    """The demo's starter prompt set (56 templates x 32 names)."""
    return demo_library(stdout=io.StringIO())


def _small_library():
    for value, group, gender in [
        ("Wei", "Chinese", "man"),
        ("Mei", "Chinese", "woman"),
        ("Emily", "White", "woman"),
    ]:
        factories.group_member(value, group, gender=gender)
    factories.template("b-tpl", "{name} went to the {group} market to [BLANK]")
    factories.template("a-tpl", "{name} got into the plane to [BLANK]")


def _rows(prompt_set: PromptSet) -> list[tuple]:
    return list(prompt_set.prompts.order_by("position").values_list("position", "key", "text"))


def test_starter_pack_gives_the_studys_1792_prompts_with_provenance(starter):
    assert starter.name == "Starter pack"
    assert starter.prompts.count() == 1792 == 56 * 32
    assert len(starter.spec["templates"]) == 56
    assert len(starter.spec["groups"]) == 6
    assert starter.spec["duplicate_count"] == 0
    first = starter.prompts.select_related("template", "group__axis", "member").get(position=0)
    assert first.key == "apartment-smell:name.asian:bayani"
    assert first.text == "Bayani's apartment smelled of [BLANK]"
    assert (first.template.key, first.group.axis.key, first.group.key, first.member.value) == (
        "apartment-smell",
        "name",
        "asian",
        "Bayani",
    )
    assert first.attributes == {"gender": "man", "popularity": "rare"}
    plane = starter.prompts.get(key="plane-trip:name.muslim:mohammed")
    assert plane.text == "Mohammed got into the plane to [BLANK]"
    genders = set(starter.prompts.values_list("attributes__gender", flat=True))
    assert genders == {"woman", "man"}


def test_demo_library_is_idempotent(starter):
    again = demo_library(stdout=io.StringIO())
    assert again.pk == starter.pk
    assert PromptSet.objects.count() == 1
    assert Prompt.objects.count() == 1792


def test_same_inputs_give_the_same_prompts_in_the_same_order_with_the_same_keys():
    _small_library()
    one = promptset_build(
        name="one", template_keys=["b-tpl", "a-tpl"], group_refs=["name/white", "name/chinese"]
    )
    two = promptset_build(name="two", template_keys=["a-tpl", "b-tpl"], group_refs=["name/*"])
    assert _rows(one) == _rows(two)
    assert [key for _, key, _ in _rows(one)] == [
        "a-tpl:name.chinese:mei",
        "a-tpl:name.chinese:wei",
        "a-tpl:name.white:emily",
        "b-tpl:name.chinese:mei",
        "b-tpl:name.chinese:wei",
        "b-tpl:name.white:emily",
    ]
    assert _rows(one)[3][2] == "Mei went to the Chinese market to [BLANK]"


def test_plan_counts_and_samples_without_saving():
    _small_library()
    plan = promptset_plan(template_keys=["*"], group_refs=["name/*"])
    assert plan.count == 6
    assert [row["key"] for row in plan.sample][:2] == ["a-tpl:name.chinese:mei", "a-tpl:name.chinese:wei"]
    assert not PromptSet.objects.exists()


def test_duplicate_texts_are_detected_and_reported():
    _small_library()
    factories.template("c-tpl", "{name} got into the plane to [BLANK]")  # same text as a-tpl
    plan = promptset_plan(template_keys=["*"], group_refs=["name/*"])
    assert plan.duplicate_count == 3
    assert plan.duplicates[0] == {
        "text": "Mei got into the plane to [BLANK]",
        "key": "c-tpl:name.chinese:mei",
        "same_as": "a-tpl:name.chinese:mei",
    }
    built = promptset_build(name="dups", template_keys=["*"], group_refs=["name/*"])
    assert built.spec["duplicate_count"] == 3
    assert len(built.spec["duplicates"]) == 3


def test_member_without_an_attribute_the_template_needs_is_an_error_and_nothing_is_saved():
    factories.group_member("Emily", "White", pronoun="she")
    factories.group_member("Connor", "White")
    factories.template("p", "{name} said {pronoun} would [BLANK]")
    plan = promptset_plan(template_keys=["p"], group_refs=["name/white"])
    assert plan.error_count == 1
    assert "'p' needs {pronoun}, which member 'Connor'" in plan.errors[0]["message"]
    with pytest.raises(AuditError) as caught:
        promptset_build(name="broken", template_keys=["p"], group_refs=["name/white"])
    assert caught.value.errors
    assert not PromptSet.objects.exists()
    assert not Prompt.objects.exists()


def test_members_whose_keys_collide_are_reported():
    factories.group_member("Jean-Luc", "French")
    factories.group_member("Jean Luc", "French")
    factories.template("t", "{name} went to [BLANK]")
    plan = promptset_plan(template_keys=["t"], group_refs=["name/french"])
    assert "same prompt key 't:name.french:jean-luc'" in plan.errors[0]["message"]


def test_unknown_templates_and_groups_are_named():
    _small_library()
    with pytest.raises(AuditError) as caught:
        promptset_plan(template_keys=["nope"], group_refs=["name/martian", "bad"])
    messages = " ".join(e["message"] for e in caught.value.errors)
    assert "unknown template 'nope'" in messages
    assert "unknown group 'name/martian'" in messages
    assert "'bad' is not axis/group" in messages


def test_name_must_be_new_and_safe():
    _small_library()
    promptset_build(name="taken", template_keys=["*"], group_refs=["name/*"])
    with pytest.raises(AuditError, match="exists"):
        promptset_build(name="taken", template_keys=["*"], group_refs=["name/*"])
    with pytest.raises(AuditError):
        promptset_build(name="=cmd()", template_keys=["*"], group_refs=["name/*"])


def test_freeze_is_a_conditional_update():
    _small_library()
    prompt_set = promptset_build(name="s", template_keys=["*"], group_refs=["name/*"])
    assert promptset_freeze(prompt_set=prompt_set) is True
    frozen_at = prompt_set.frozen_at
    assert frozen_at is not None
    assert promptset_freeze(prompt_set=prompt_set) is False
    prompt_set.refresh_from_db()
    assert prompt_set.frozen_at == frozen_at


def test_revising_a_frozen_set_makes_a_new_version_and_leaves_the_old_one_alone():
    _small_library()
    original = promptset_build(name="s", template_keys=["*"], group_refs=["name/*"])
    before = _rows(original)
    promptset_freeze(prompt_set=original)
    revised = promptset_revise(
        prompt_set=original, template_keys=["a-tpl"], group_refs=["name/chinese"], description="smaller"
    )
    assert (revised.name, revised.version, revised.previous_id) == ("s", 2, original.pk)
    assert revised.prompts.count() == 2
    assert _rows(original) == before
    assert AuditEvent.objects.filter(action="promptset.new_version").exists()


def test_a_set_used_by_a_run_is_frozen_even_without_frozen_at():
    _small_library()
    original = promptset_build(name="s", template_keys=["*"], group_refs=["name/*"])
    factories.run_with_outputs(original, [factories.endpoint()])
    revised = promptset_revise(
        prompt_set=original, template_keys=["a-tpl"], group_refs=["name/*"], description=""
    )
    assert revised.pk != original.pk
    assert original.prompts.count() == 6


def test_revising_an_unfrozen_set_rebuilds_it_in_place():
    _small_library()
    original = promptset_build(name="s", template_keys=["*"], group_refs=["name/*"])
    revised = promptset_revise(
        prompt_set=original, template_keys=["a-tpl"], group_refs=["name/*"], description="d"
    )
    assert revised.pk == original.pk
    assert revised.version == 1
    assert revised.prompts.count() == 3
    assert PromptSet.objects.count() == 1


def test_build_page_previews_count_and_sample_then_builds(client, admin_user_role):
    _small_library()
    client.force_login(admin_user_role)
    url = reverse("promptset_build")
    assert "Chinese" in client.get(url).content.decode()
    form = {"name": "web", "all_templates": "on", "groups": ["name/chinese", "name/white"]}
    preview = client.post(url, {**form, "action": "preview"})
    assert preview.status_code == 200
    page = preview.content.decode()
    assert "Preview: 6 prompts" in page
    assert "Mei got into the plane to [BLANK]" in page
    assert not PromptSet.objects.exists()
    unnamed = client.post(url, {**form, "name": "", "action": "preview"})
    assert "Preview: 6 prompts" in unnamed.content.decode()  # a preview needs no name yet
    refused = client.post(url, {**form, "name": "", "action": "save"})
    assert refused.status_code == 400
    assert "needs a name" in refused.content.decode()
    saved = client.post(url, {**form, "action": "save"})
    prompt_set = PromptSet.objects.get(name="web")
    assert saved.status_code == 302
    assert saved.url == reverse("promptset_detail", args=[prompt_set.pk])
    assert prompt_set.created_by == admin_user_role
    assert prompt_set.prompts.count() == 6


def test_build_page_shows_duplicates_and_errors(client, admin_user_role):
    factories.group_member("Emily", "White")
    factories.template("a", "{name} went to [BLANK]")
    factories.template("b", "{name} went to [BLANK]")
    client.force_login(admin_user_role)
    page = client.post(
        reverse("promptset_build"),
        {"name": "x", "templates": ["a", "b"], "groups": ["name/white"], "action": "preview"},
    ).content.decode()
    assert "1 duplicate text" in page
    bad = client.post(
        reverse("promptset_build"), {"name": "x", "templates": [], "groups": ["name/white"], "action": "save"}
    )
    assert bad.status_code == 400
    assert "Choose at least one template" in bad.content.decode()
    assert not PromptSet.objects.exists()


def test_revise_page_of_a_frozen_set_saves_a_new_version(client, admin_user_role):
    _small_library()
    original = promptset_build(name="s", template_keys=["*"], group_refs=["name/*"])
    promptset_freeze(prompt_set=original)
    client.force_login(admin_user_role)
    url = reverse("promptset_revise", args=[original.pk])
    assert "saving creates version 2" in client.get(url).content.decode()
    response = client.post(url, {"templates": ["a-tpl"], "groups": ["name/white"], "action": "save"})
    new = PromptSet.objects.get(name="s", version=2)
    assert response.url == reverse("promptset_detail", args=[new.pk])
    assert new.prompts.count() == 1


def test_set_page_counts_per_group_and_per_template(
    client, researcher, starter, django_assert_max_num_queries
):
    client.force_login(researcher)
    with django_assert_max_num_queries(9):  # 5 for session, user and roles; 4 for the set and counts
        response = client.get(reverse("promptset_detail", args=[starter.pk]))
    counts = response.context["counts"]
    assert counts["total"] == 1792
    assert {row["group"]: row["count"] for row in counts["per_group"]} == {
        "asian": 5 * 56,
        "black": 5 * 56,
        "chinese": 5 * 56,
        "hispanic": 5 * 56,
        "muslim": 6 * 56,
        "white": 6 * 56,
    }
    assert [row["is_control"] for row in counts["per_group"]] == [False] * 5 + [True]
    assert len(counts["per_template"]) == 56
    assert all(row["count"] == 32 for row in counts["per_template"])
    page = response.content.decode()
    assert "<strong>1792</strong> prompts from 56 templates" in page
    assert f"{reverse('prompt_list', args=[starter.pk])}?group=name/muslim" in page


def test_prompt_list_page_search_filters_and_pagination(
    client, researcher, starter, django_assert_max_num_queries
):
    client.force_login(researcher)
    url = reverse("prompt_list", args=[starter.pk])
    with django_assert_max_num_queries(10):  # 5 for session, user, roles; set, count, last, page, groups
        response = client.get(url)
    assert "Page 1 of 36" in response.content.decode()
    assert [p.position for p in response.context["page"].object_list] == list(range(50))
    last = client.get(url, {"page": 36}).context["page"]
    assert [p.position for p in last.object_list] == list(range(1750, 1792))
    assert not last.has_next()
    assert client.get(url, {"page": 999}).context["page"].number == 36  # out of range: the last page
    assert client.get(url, {"q": "plane to"}).context["page"].paginator.count == 32
    filtered = client.get(url, {"group": "name/muslim", "q": "plane to", "page": 1}).context["page"]
    assert filtered.paginator.count == 6
    assert {p.group.key for p in filtered.object_list} == {"muslim"}
    by_template = client.get(url, {"template": "plane-trip"}).context["page"]
    assert by_template.paginator.count == 32
    assert client.get(url, {"template": "no-such"}).context["page"].paginator.count == 0
    page_two = client.get(url, {"q": "[BLANK]", "page": 2}).content.decode()
    assert "q=%5BBLANK%5D&amp;page=1" in page_two  # pagination links keep the search


def test_list_page_and_escaping(client, researcher):
    factories.group_member("<script>alert(1)</script>", "White")
    factories.template("t", "{name} went to [BLANK]")
    prompt_set = promptset_build(name="<b>set</b>", template_keys=["t"], group_refs=["name/white"])
    client.force_login(researcher)
    listing = client.get(reverse("promptset_list")).content.decode()
    assert "&lt;b&gt;set&lt;/b&gt;" in listing
    detail = client.get(reverse("prompt_list", args=[prompt_set.pk])).content.decode()
    assert "<script>alert(1)</script>" not in detail
    assert "&lt;script&gt;alert(1)&lt;/script&gt; went to [BLANK]" in detail
    assert client.get(reverse("promptset_build")).status_code == 403
    assert client.get(reverse("promptset_detail", args=[999999])).status_code == 404


def test_api_build_dry_run_detail_prompts_and_revise(client, admin_user_role, django_assert_max_num_queries):
    _small_library()
    client.force_login(admin_user_role)
    payload = {"name": "api", "templates": ["*"], "groups": ["name/*"]}
    dry = client.post("/api/prompt-sets/", {**payload, "dry_run": True}, content_type="application/json")
    assert dry.status_code == 200
    assert dry.json()["prompt_count"] == 6
    assert len(dry.json()["sample"]) == 6
    assert not PromptSet.objects.exists()
    built = client.post("/api/prompt-sets/", payload, content_type="application/json")
    assert built.status_code == 201
    body = built.json()
    assert body["prompt_count"] == 6
    assert {row["group"]: row["count"] for row in body["counts"]["per_group"]} == {
        "chinese": 4,
        "white": 2,
    }
    pk = body["id"]
    with django_assert_max_num_queries(6):
        prompts = client.get(f"/api/prompt-sets/{pk}/prompts/", {"q": "plane"}).json()
    assert prompts["count"] == 3
    assert prompts["results"][0] == {
        "id": prompts["results"][0]["id"],
        "position": 0,
        "key": "a-tpl:name.chinese:mei",
        "text": "Mei got into the plane to [BLANK]",
        "template": "a-tpl",
        "axis": "name",
        "group": "chinese",
        "group_name": "Chinese",
        "member": "Mei",
        "attributes": {"gender": "woman"},
    }
    assert client.get("/api/prompt-sets/").json()["results"][0]["prompt_count"] == 6
    assert client.get(f"/api/prompt-sets/{pk}/").json()["counts"]["total"] == 6
    promptset_freeze(prompt_set=PromptSet.objects.get(pk=pk))
    revised = client.post(
        f"/api/prompt-sets/{pk}/revise/",
        {"templates": ["a-tpl"], "groups": ["name/white"]},
        content_type="application/json",
    )
    assert revised.status_code == 201
    assert (revised.json()["version"], revised.json()["previous"]) == (2, pk)
    missing = client.post("/api/prompt-sets/", {"name": "x"}, content_type="application/json")
    assert missing.status_code == 400
    assert {e["field"] for e in missing.json()["errors"]} == {"templates", "groups"}
    duplicate = client.post("/api/prompt-sets/", payload, content_type="application/json")
    assert duplicate.status_code == 400
    assert client.get("/api/prompt-sets/999999/").status_code == 404


def test_api_is_read_only_for_researchers(client, researcher):
    _small_library()
    client.force_login(researcher)
    response = client.post(
        "/api/prompt-sets/",
        {"name": "x", "templates": ["*"], "groups": ["name/*"]},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert client.get("/api/prompt-sets/").status_code == 200


def test_build_promptset_command(capsys):
    _small_library()
    call_command("build_promptset", "cmd", "--templates", "*", "--groups", "name/*", "--dry-run")
    assert "6 prompts from 2 templates x 2 groups (dry run" in capsys.readouterr().out
    assert not PromptSet.objects.exists()
    call_command("build_promptset", "cmd", "--templates", "a-tpl", "--groups", "name/chinese")
    assert "Built cmd v1" in capsys.readouterr().out
    promptset_freeze(prompt_set=PromptSet.objects.get(name="cmd"))
    call_command("build_promptset", "cmd", "--templates", "*", "--groups", "name/*", "--revise")
    assert "Built cmd v2" in capsys.readouterr().out
    with pytest.raises(CommandError, match="unknown group 'name/none'"):
        call_command("build_promptset", "other", "--templates", "*", "--groups", "name/none")


def test_list_pages_do_not_query_per_row(client, researcher, django_assert_max_num_queries):
    _small_library()
    for name in ("one", "two", "three"):
        promptset_build(name=name, template_keys=["*"], group_refs=["name/*"])
    client.force_login(researcher)
    with django_assert_max_num_queries(6):
        page = client.get(reverse("promptset_list"))
    assert [s.prompt_count for s in page.context["prompt_sets"]] == [6, 6, 6]
    with django_assert_max_num_queries(6):
        body = client.get("/api/prompt-sets/").json()
    assert [s["name"] for s in body["results"]] == ["one", "three", "two"]


def test_template_and_group_pages(client, researcher, starter):
    client.force_login(researcher)
    templates = client.get(reverse("library_templates"), {"q": "plane"})
    assert [t.key for t in templates.context["page"]] == ["plane-trip"]
    assert "{name} got into the plane to [BLANK]" in templates.content.decode()
    groups = client.get(reverse("library_groups")).content.decode()
    assert "White <code>white</code> <strong>(control)</strong>" in groups
    assert "María <small" in groups


def test_search_matches_text_and_key_in_any_case(client, researcher, starter):
    client.force_login(researcher)
    url = reverse("prompt_list", args=[starter.pk])
    assert client.get(url, {"q": "MOHAMMED GOT INTO"}).context["page"].paginator.count == 1
    assert client.get(url, {"q": "Plane-Trip:Name.Muslim"}).context["page"].paginator.count == 6
    assert client.get(url, {"q": "maría"}).context["page"].paginator.count == 56


def test_a_set_with_gaps_in_positions_is_still_paged_correctly(client, researcher):
    members = [factories.group_member(f"Name{i:02d}", "White") for i in range(60)]
    prompt_set = factories.prompt_set_with_prompts(members, [factories.template("t")])
    prompt_set.prompts.filter(position__lt=10).delete()  # positions now run 10..59
    client.force_login(researcher)
    url = reverse("prompt_list", args=[prompt_set.pk])
    first = client.get(url).context["page"]
    assert [p.position for p in first.object_list] == list(range(10, 60))
    assert first.paginator.count == 50
