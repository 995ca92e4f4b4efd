"""Uploading templates and groups in the browser (check, preview, confirm), through the API and by command."""

import html
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from annotations.models import AuditEvent, Group, GroupAxis, GroupMember, PromptTemplate
from tests.conftest import REPO

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Users are made per test; the default PBKDF2 hasher would spend most of the run hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


STARTER = REPO / "annotations" / "starter"
GOOD_TEMPLATE = b"ok,{name} went to the market to [BLANK]\n"

# (id, kind, file name, content, settings overrides, field named, words in the message)
BAD_UPLOADS = [
    (
        "encoding",
        "templates",
        "t.csv",
        b"key,text\n" + GOOD_TEMPLATE + b"k1,{name} caf\xe9\n",
        {},
        "file",
        "not valid UTF-8",
    ),
    (
        "malformed-row",
        "templates",
        "t.csv",
        b"key,text\n" + GOOD_TEMPLATE + b"k1,{name} x,extra\n",
        {},
        "row",
        "has 3 cells",
    ),
    ("malformed-json", "templates", "t.json", b'{"templates": [{"key": "ok"', {}, "file", "invalid JSON"),
    ("malformed-yaml", "templates", "t.yaml", b"templates:\n  - key: [\n", {}, "file", "invalid YAML"),
    (
        "unknown-placeholder",
        "templates",
        "t.csv",
        b"key,text\n" + GOOD_TEMPLATE + b"k1,{name} {pronon}\n",
        {},
        "text",
        "unknown placeholder {pronon}",
    ),
    (
        "missing-placeholder",
        "templates",
        "t.csv",
        b"key,text\n" + GOOD_TEMPLATE + b"k1,Someone went\n",
        {},
        "text",
        "missing placeholder {name}",
    ),
    ("empty-value", "templates", "t.csv", b"key,text\n" + GOOD_TEMPLATE + b"k1,\n", {}, "text", "is empty"),
    (
        "duplicate-key",
        "templates",
        "t.csv",
        b"key,text\n" + GOOD_TEMPLATE + b"ok,{name} came\n",
        {},
        "key",
        "duplicate key",
    ),
    (
        "too-large",
        "templates",
        "t.csv",
        b"key,text\n" + GOOD_TEMPLATE * 20,
        {"AUDIT_UPLOAD_MAX_BYTES": 200},
        "file",
        "the limit is 200 bytes",
    ),
    (
        "too-many-rows",
        "templates",
        "t.csv",
        b"key,text\n" + b"".join(b"k%d,{name} x\n" % i for i in range(3)),
        {"AUDIT_UPLOAD_MAX_ROWS": 2},
        "file",
        "the limit is 2 rows",
    ),
    (
        "formula",
        "templates",
        "t.csv",
        b"key,text\n" + GOOD_TEMPLATE + b'k1,"=HYPERLINK(""http://x"") {name}"\n',
        {},
        "text",
        "formula",
    ),
    (
        "groups-encoding",
        "groups",
        "g.csv",
        b"axis,group,value\nname,Muslim,Fatima\nname,Muslim,Fat\xefma\n",
        {},
        "file",
        "not valid UTF-8",
    ),
    (
        "groups-malformed-row",
        "groups",
        "g.csv",
        b"axis,group,value\nname,Muslim,Fatima\nname,Muslim\n",
        {},
        "row",
        "has 2 cells",
    ),
    (
        "groups-empty-value",
        "groups",
        "g.csv",
        b"axis,group,value\nname,Muslim,Fatima\nname,Muslim,\n",
        {},
        "value",
        "is empty",
    ),
    (
        "groups-duplicate",
        "groups",
        "g.csv",
        b"axis,group,value\nname,Muslim,Fatima\nname,Muslim,Fatima\n",
        {},
        "value",
        "duplicate member",
    ),
    (
        "groups-formula",
        "groups",
        "g.csv",
        b"axis,group,value,gender\nname,Muslim,Fatima,woman\nname,Muslim,Juan,+man\n",
        {},
        "attributes.gender",
        "formula",
    ),
    (
        "groups-too-large",
        "groups",
        "g.csv",
        b"axis,group,value\n" + b"name,Muslim,Fatima\n" * 20,
        {"AUDIT_UPLOAD_MAX_BYTES": 100},
        "file",
        "the limit is 100 bytes",
    ),
    (
        "groups-too-many-rows",
        "groups",
        "g.yaml",
        b"axis: name\ngroups:\n  - group: A\n    members: [a, b, c]\n",
        {"AUDIT_UPLOAD_MAX_ROWS": 2},
        "file",
        "the limit is 2 rows",
    ),
]


def _nothing_saved() -> None:
    assert PromptTemplate.objects.count() == 0
    assert GroupMember.objects.count() == 0
    assert Group.objects.count() == 0
    assert GroupAxis.objects.count() == 0
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("case", BAD_UPLOADS, ids=[case[0] for case in BAD_UPLOADS])
def test_bad_upload_in_the_browser_lists_errors_and_saves_nothing(client, admin_user_role, settings, case):
    _, kind, filename, content, overrides, field, needle = case
    for name, value in overrides.items():
        setattr(settings, name, value)
    client.force_login(admin_user_role)
    url = reverse(f"library_upload_{kind}")
    response = client.post(url, {"action": "check", "file": SimpleUploadedFile(filename, content)})
    assert response.status_code == 400
    page = html.unescape(response.content.decode())
    assert needle in page
    assert f"<td>{field}</td>" in page
    assert "Confirm and save" not in page
    _nothing_saved()


@pytest.mark.parametrize("case", BAD_UPLOADS, ids=[case[0] for case in BAD_UPLOADS])
def test_bad_upload_through_the_api_answers_400_with_errors_and_saves_nothing(
    client, admin_user_role, settings, case
):
    _, kind, filename, content, overrides, field, needle = case
    for name, value in overrides.items():
        setattr(settings, name, value)
    client.force_login(admin_user_role)
    response = client.post(f"/api/{kind}/import/", {"file": SimpleUploadedFile(filename, content)})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_upload"
    assert "nothing was saved" in body["detail"]
    assert any(e["field"] == field and needle in e["message"] for e in body["errors"]), body
    assert all({"row", "field", "message"} <= set(e) for e in body["errors"])
    _nothing_saved()


def test_browser_upload_previews_then_saves_on_confirm(client, admin_user_role):
    client.force_login(admin_user_role)
    url = reverse("library_upload_templates")
    content = (STARTER / "templates.yaml").read_bytes()
    response = client.post(url, {"action": "check", "file": SimpleUploadedFile("templates.yaml", content)})
    assert response.status_code == 200
    page = response.content.decode()
    assert "Preview of templates.yaml (YAML)" in page
    assert "<strong>56</strong>" in page
    assert "{name} got into the plane to [BLANK]" in page
    assert PromptTemplate.objects.count() == 0  # nothing saved before confirming
    token = response.context["token"]
    response = client.post(url, {"action": "confirm", "token": token})
    assert response.status_code == 302
    assert PromptTemplate.objects.count() == 56
    event = AuditEvent.objects.get(action="templates.import")
    assert event.actor == admin_user_role
    assert event.details["new"] == 56
    # The token is single-use: a second confirmation is refused.
    again = client.post(url, {"action": "confirm", "token": token})
    assert again.status_code == 400
    assert "upload the file again" in again.content.decode()


def test_confirm_with_a_forged_token_saves_nothing(client, admin_user_role):
    client.force_login(admin_user_role)
    url = reverse("library_upload_groups")
    content = (STARTER / "groups.yaml").read_bytes()
    client.post(url, {"action": "check", "file": SimpleUploadedFile("groups.yaml", content)})
    response = client.post(url, {"action": "confirm", "token": "forged"})
    assert response.status_code == 400
    assert GroupMember.objects.count() == 0


def test_groups_upload_in_the_browser_then_reupload_is_unchanged(client, admin_user_role):
    client.force_login(admin_user_role)
    url = reverse("library_upload_groups")
    content = (STARTER / "groups.yaml").read_bytes()
    for expected_new in (32, 0):
        response = client.post(url, {"action": "check", "file": SimpleUploadedFile("groups.yaml", content)})
        assert response.context["plan"].counts["new"] == expected_new
        client.post(url, {"action": "confirm", "token": response.context["token"]})
    assert GroupMember.objects.count() == 32
    assert Group.objects.get(key="white").is_control
    assert GroupMember.objects.get(value="María").attributes == {"gender": "woman", "popularity": "common"}


def test_upload_pages_are_for_admins_and_lists_for_researchers(client, researcher):
    client.force_login(researcher)
    assert client.get(reverse("library_upload_templates")).status_code == 403
    assert client.get(reverse("library_templates")).status_code == 200
    assert client.get(reverse("library_groups")).status_code == 200
    response = client.post("/api/templates/import/", {"file": SimpleUploadedFile("t.csv", b"key,text\n")})
    assert response.status_code == 403
    assert client.get("/api/templates/").status_code == 200


def test_annotators_cannot_read_the_library(client, annotator):
    client.force_login(annotator)
    assert client.get(reverse("library_templates")).status_code == 403
    assert client.get("/api/templates/").status_code == 403


@pytest.mark.parametrize("name", ["templates.csv", "templates.json"])
def test_api_template_upload_dry_run_then_save(client, admin_user_role, name):
    client.force_login(admin_user_role)
    content = (STARTER / "examples" / name).read_bytes()
    dry = client.post(
        "/api/templates/import/", {"file": SimpleUploadedFile(name, content), "dry_run": "true"}
    )
    assert dry.status_code == 200
    assert dry.json()["saved"] is False
    assert dry.json()["counts"]["new"] == 3
    assert dry.json()["preview"][0]["key"] == "plane-trip"
    assert PromptTemplate.objects.count() == 0
    saved = client.post("/api/templates/import/", {"file": SimpleUploadedFile(name, content)})
    assert saved.status_code == 201
    assert PromptTemplate.objects.count() == 3
    listed = client.get("/api/templates/?q=plane").json()
    assert [t["key"] for t in listed["results"]] == ["plane-trip"]


def test_api_groups_upload_and_list(client, admin_user_role, django_assert_max_num_queries):
    client.force_login(admin_user_role)
    content = (STARTER / "groups.yaml").read_bytes()
    assert (
        client.post("/api/groups/import/", {"file": SimpleUploadedFile("g.yaml", content)}).status_code == 201
    )
    with django_assert_max_num_queries(8):
        body = client.get("/api/groups/").json()
    refs = {g["ref"]: g for g in body["results"]}
    assert set(refs) == {f"name/{k}" for k in ("asian", "black", "chinese", "hispanic", "muslim", "white")}
    assert len(refs["name/muslim"]["members"]) == 6


def test_reimport_updates_changed_templates_and_keeps_others(client, admin_user_role):
    client.force_login(admin_user_role)
    first = b"key,text,topic\na,{name} went,x\nb,{name} came,y\n"
    client.post("/api/templates/import/", {"file": SimpleUploadedFile("t.csv", first)})
    second = b"key,text,topic\na,{name} left,x\n"
    body = client.post("/api/templates/import/", {"file": SimpleUploadedFile("t.csv", second)}).json()
    assert body["counts"] == {"templates": 1, "new": 0, "changed": 1, "unchanged": 0, "same_text": 0}
    same = b"key,text\nc,{name} left\nd,{name} left\n"
    dry = client.post(
        "/api/templates/import/", {"file": SimpleUploadedFile("t.csv", same), "dry_run": "true"}
    )
    assert dry.json()["counts"]["same_text"] == 1
    assert dict(PromptTemplate.objects.values_list("key", "text")) == {"a": "{name} left", "b": "{name} came"}


def test_placeholder_from_a_member_attribute_is_known_once_groups_are_uploaded(client, admin_user_role):
    client.force_login(admin_user_role)
    template = b"key,text\np,{name} said {pronoun} would [BLANK]\n"
    rejected = client.post("/api/templates/import/", {"file": SimpleUploadedFile("t.csv", template)})
    assert rejected.status_code == 400
    groups = b"axis,group,value,pronoun\nname,White,Emily,she\n"
    client.post("/api/groups/import/", {"file": SimpleUploadedFile("g.csv", groups)})
    accepted = client.post("/api/templates/import/", {"file": SimpleUploadedFile("t.csv", template)})
    assert accepted.status_code == 201


def test_upload_without_file_or_with_unknown_format(client, admin_user_role):
    client.force_login(admin_user_role)
    assert client.post("/api/templates/import/", {}).status_code == 400
    response = client.post("/api/templates/import/", {"file": SimpleUploadedFile("t.xlsx", b"PK")})
    assert response.status_code == 400
    assert "Unknown format" in response.json()["detail"]
    bad_format = client.post(
        "/api/templates/import/", {"file": SimpleUploadedFile("t.csv", b"key,text\n"), "format": "xlsx"}
    )
    assert bad_format.status_code == 400
    assert [e["field"] for e in bad_format.json()["errors"]] == ["format"]
    declared = client.post(
        "/api/templates/import/",
        {"file": SimpleUploadedFile("upload", b"key,text\na,{name}\n"), "format": "csv"},
    )
    assert declared.status_code == 201


def test_import_commands(tmp_path, capsys):
    call_command("import_groups", str(STARTER / "groups.yaml"))
    call_command("import_templates", str(STARTER / "templates.yaml"), "--dry-run")
    assert PromptTemplate.objects.count() == 0
    call_command("import_templates", str(STARTER / "templates.yaml"))
    out = capsys.readouterr().out
    assert "Imported" in out
    assert "templates 56, new 56" in out
    assert PromptTemplate.objects.count() == 56
    assert GroupMember.objects.count() == 32
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"key,text\nz,{name}\nzz,=1\n")
    with pytest.raises(CommandError, match=r"row 2, line 3, text: starts with"):
        call_command("import_templates", str(bad))
    assert not PromptTemplate.objects.filter(key="z").exists()


def test_import_holisticbias_keeps_licence_and_attribution(capsys):
    from tests.conftest import SHARED

    if not (SHARED / "data" / "holistic_bias" / "v1.1" / "descriptors.json").exists():
        pytest.skip(f"HolisticBias data not found under {SHARED}")
    call_command("import_holisticbias")
    assert "CC BY-SA 4.0" in capsys.readouterr().out
    descriptors = json.loads((SHARED / "data" / "holistic_bias" / "v1.1" / "descriptors.json").read_text())
    expected = sum(len(items) for buckets in descriptors.values() for items in buckets.values())
    assert GroupMember.objects.count() == expected
    assert GroupAxis.objects.count() == len(descriptors)
    religion = GroupAxis.objects.get(key="holisticbias-v11-religion")
    assert "CC BY-SA 4.0" in religion.description
    assert "Smith et al. 2022" in religion.description
    assert all("CC BY-SA 4.0" in d for d in Group.objects.values_list("description", flat=True))
    deaf = GroupMember.objects.get(value="Deaf", group__key="auditory")
    assert deaf.attributes == {"preference": "reviewed"}
    call_command("import_holisticbias")  # idempotent
    assert GroupMember.objects.count() == expected
