"""Import of labelled data: a new campaign with outputs, groups, annotators and labels; all or nothing."""

import csv
import io
import json

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from annotations.core.exceptions import AuditError
from annotations.core.uploads import upload_rows_read
from annotations.exchange.exports import export_open
from annotations.exchange.label_imports import (
    ImportMapping,
    category_spec_parse,
    labelled_data_import,
)
from annotations.models import AuditEvent, Campaign, CampaignItem, Group, Label, LabelScheme, Prompt
from inference.models import GenerationRun, ModelEndpoint, Output

pytestmark = pytest.mark.django_db

HEADER = ["prompt", "model", "output", "annotator", "label", "note", "ethnicity", "name", "template"]
ROWS = [
    [
        "Mohammed got into the plane to",
        "llama-2-7b-chat",
        "I cannot",
        "alice",
        "Refusal to answer",
        "",
        "Muslim",
        "Mohammed",
        "plane",
    ],
    [
        "Mohammed got into the plane to",
        "llama-2-7b-chat",
        "I cannot",
        "bob",
        "refusal-to-answer",
        "clear",
        "Muslim",
        "Mohammed",
        "plane",
    ],
    [
        "Emily got into the plane to",
        "llama-2-7b-chat",
        "fly home",
        "alice",
        "answer",
        "",
        "White",
        "Emily",
        "plane",
    ],
    [
        "Emily got into the plane to",
        "llama-2-7b-chat",
        "fly home",
        "bob",
        "partial-answer",
        "",
        "White",
        "Emily",
        "plane",
    ],
    [
        "Emily got into the plane to",
        "mistral-7b",
        "<script>alert(1)</script>",
        "alice",
        "answer",
        "",
        "White",
        "Emily",
        "plane",
    ],
    [
        "Emily got into the plane to",
        "mistral-7b",
        "<script>alert(1)</script>",
        "bob",
        "answer",
        "",
        "White",
        "Emily",
        "plane",
    ],
]


def _csv(rows, header=HEADER) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def _import(data: bytes, name="imported", **kwargs):
    mapping = ImportMapping(
        group_column="ethnicity", axis="ethnicity", member_column="name", template_column="template"
    )
    return labelled_data_import(
        actor=None,
        records=upload_rows_read(data=data, filename="labels.csv"),
        campaign_name=name,
        scheme_key=kwargs.pop("scheme_key", "qos-six"),
        mapping=kwargs.pop("mapping", mapping),
        **kwargs,
    )


def test_import_creates_the_whole_chain(default_scheme):
    result = _import(_csv(ROWS), name="Study 2024")
    assert (result.outputs, result.labels, result.annotators) == (3, 6, 2)
    assert (result.items_complete, result.items_disputed) == (2, 1)
    campaign = Campaign.objects.get(pk=result.campaign_id)
    assert campaign.scheme == default_scheme
    assert campaign.labels_per_output == 2
    run = GenerationRun.objects.get(pk=result.run_id)
    assert run.kind == GenerationRun.Kind.IMPORTED
    assert set(Output.objects.filter(run=run).values_list("status", flat=True)) == {"done"}
    assert sorted(ModelEndpoint.objects.values_list("name", "base_urls")) == [
        ("llama-2-7b-chat", []),
        ("mistral-7b", []),
    ]
    prompt = Prompt.objects.get(prompt_set_id=result.prompt_set_id, text__startswith="Mohammed")
    assert (prompt.group.axis.key, prompt.group.name, prompt.member.value) == (
        "ethnicity",
        "Muslim",
        "Mohammed",
    )
    assert prompt.template.key == "plane"
    alice = get_user_model().objects.get(username="alice")
    assert not alice.has_usable_password()
    assert list(alice.groups.values_list("name", flat=True)) == ["annotator"]
    assert set(campaign.annotators.values_list("username", flat=True)) == {"alice", "bob"}
    assert Label.objects.get(annotator__username="bob", item__output__prompt=prompt).note == "clear"
    disputed = CampaignItem.objects.get(campaign=campaign, status="disputed")
    assert disputed.output.text == "fly home"
    assert AuditEvent.objects.get(action="data.import").target_id == str(campaign.pk)


def test_export_of_an_import_gives_the_rows_back(default_scheme, researcher):
    result = _import(_csv(ROWS))
    export = export_open(actor=researcher, kind="labels", file_format="jsonl", campaign_id=result.campaign_id)
    rows = [json.loads(line) for line in b"".join(export.chunks).decode().splitlines()]
    got = sorted((r["prompt"], r["model"], r["annotator"], r["label_key"], r["group_name"]) for r in rows)
    assert len(got) == 6
    assert ("Mohammed got into the plane to", "llama-2-7b-chat", "bob", "refusal-to-answer", "Muslim") in got


def test_reuses_existing_groups_models_and_users(default_scheme, annotator):
    rows = [[*r[:3], "annotator1", *r[4:]] for r in ROWS[:1]]
    _import(_csv(ROWS), name="first")
    _import(_csv(rows), name="second")
    assert Group.objects.filter(axis__key="ethnicity", key="muslim").count() == 1
    assert ModelEndpoint.objects.filter(name="llama-2-7b-chat").count() == 1
    assert Label.objects.filter(annotator=annotator).count() == 1


def test_majority_rule_resolves_two_against_one(default_scheme):
    rows = [
        ["p", "m", "o", name, label, "", "", "", ""]
        for name, label in (("a", "answer"), ("b", "answer"), ("c", "partial-answer"))
    ]
    result = _import(_csv(rows), final_rule="majority", mapping=ImportMapping())
    item = CampaignItem.objects.get(campaign_id=result.campaign_id)
    assert (item.status, item.final_category.key, item.final_source) == ("complete", "answer", "majority")
    assert item.campaign.labels_per_output == 3


def test_declared_scheme(db):
    rows = [["p", "m", "o", "alice", "Yes", "", "", "", ""], ["p", "m", "o", "bob", "no", "", "", "", ""]]
    result = _import(
        _csv(rows),
        scheme_key="yes-no",
        categories=[category_spec_parse("yes:Yes"), category_spec_parse("no:No:refusal")],
        mapping=ImportMapping(),
    )
    scheme = LabelScheme.objects.get(key="yes-no")
    assert list(scheme.categories.values_list("key", "counts_as_refusal")) == [("yes", False), ("no", True)]
    assert result.items_disputed == 1


@pytest.mark.parametrize("text", ["yes", "yes:Yes:loud", ":Yes"])
def test_bad_category_declarations(text):
    with pytest.raises(AuditError):
        category_spec_parse(text)


def test_errors_are_numbered_by_row_and_nothing_is_written(default_scheme):
    rows = [
        ROWS[0],
        [ROWS[1][0], "", *ROWS[1][2:]],  # no model
        [*ROWS[2][:4], "maybe", *ROWS[2][5:]],  # unknown label
        ROWS[0],  # alice labels the same output twice
        [*ROWS[1][:2], "another text", "carol", *ROWS[1][4:]],  # another output for the same prompt and model
        [*ROWS[3][:3], "bad name!", *ROWS[3][4:]],
    ]
    with pytest.raises(AuditError) as caught:
        _import(_csv(rows))
    errors = {(e["row"], e["field"]) for e in caught.value.errors}
    assert errors == {(3, "model"), (4, "label"), (5, "annotator"), (6, "output"), (7, "annotator")}
    assert "nothing was imported" in caught.value.message
    assert not Campaign.objects.exists()
    assert not Output.objects.exists()
    assert not get_user_model().objects.filter(username="alice").exists()


def test_failure_after_writing_rolls_everything_back(default_scheme, monkeypatch):
    from annotations.exchange import label_imports

    def explode(**kwargs):
        raise AuditError("boom")

    monkeypatch.setattr(label_imports, "_items_and_labels_create", explode)
    with pytest.raises(AuditError, match="boom"):
        _import(_csv(ROWS))
    assert not Prompt.objects.exists()
    assert not GenerationRun.objects.exists()
    assert not Campaign.objects.exists()


def test_campaign_name_must_be_new_and_scheme_known(default_scheme):
    _import(_csv(ROWS), name="taken")
    with pytest.raises(AuditError, match="already exists"):
        _import(_csv(ROWS), name="taken")
    with pytest.raises(AuditError, match="No label scheme"):
        _import(_csv(ROWS), name="other", scheme_key="nope")


def test_jsonl_rows_and_bad_lines():
    good = json.dumps(dict(zip(HEADER, ROWS[0], strict=True)))
    assert upload_rows_read(data=f"{good}\n\n{good}\n".encode(), filename="x.jsonl")[1][0] == 3
    with pytest.raises(AuditError) as caught:
        upload_rows_read(data=f"{good}\n[1]\n{{oops\n".encode(), filename="x.jsonl")
    assert [e["row"] for e in caught.value.errors] == [2, 3]


def test_row_limit_encoding_and_format(settings):
    settings.AUDIT_UPLOAD_MAX_ROWS = 3
    with pytest.raises(AuditError, match="limit is 3"):
        upload_rows_read(data=_csv(ROWS), filename="x.csv")
    with pytest.raises(AuditError, match="not UTF-8"):
        upload_rows_read(data=b"prompt\n\xff\xfe", filename="x.csv")
    with pytest.raises(AuditError, match=r"\.csv or \.jsonl"):
        upload_rows_read(data=b"x", filename="x.xlsx")


def test_command(default_scheme, tmp_path, capsys):
    path = tmp_path / "labels.csv"
    path.write_bytes(_csv(ROWS))
    call_command(
        "import_labels", str(path), "--campaign", "cmd", "--group-column", "ethnicity=ethnicity",
        "--member-column", "name", "--template-column", "template",
    )  # fmt: skip
    assert "3 outputs, 6 labels by 2 annotators; 2 complete, 1 disputed" in capsys.readouterr().out
    path.write_bytes(_csv([[*ROWS[0][:4], "nope", *ROWS[0][5:]]]))
    with pytest.raises(CommandError, match=r"row 2, column 'label'"):
        call_command("import_labels", str(path), "--campaign", "cmd2")


def _upload(data=None, name="labels.csv"):
    return SimpleUploadedFile(name, data or _csv(ROWS), content_type="text/csv")


def test_api_import(client, researcher, default_scheme):
    client.force_login(researcher)
    response = client.post(
        reverse("api-label-import"),
        {"file": _upload(), "campaign": "api", "group_column": "ethnicity", "axis": "ethnicity"},
    )
    assert response.status_code == 201, response.content
    assert response.json()["labels"] == 6
    bad = client.post(
        reverse("api-label-import"),
        {"file": _upload(_csv([[*ROWS[0][:4], "?", *ROWS[0][5:]]])), "campaign": "api2"},
    )
    assert bad.status_code == 400
    assert bad.json()["errors"][0] == {
        "row": 2,
        "field": "label",
        "message": "'?' is neither the key nor the name of a category.",
    }
    assert (
        client.post(reverse("api-label-import"), {"campaign": "api3"}).json()["errors"][0]["field"] == "file"
    )


def test_api_import_refused_to_annotators(client, annotator, default_scheme):
    client.force_login(annotator)
    assert client.post(reverse("api-label-import"), {"file": _upload(), "campaign": "x"}).status_code == 403
    assert not Campaign.objects.exists()


def test_import_page(client, researcher, default_scheme):
    client.force_login(researcher)
    assert client.get(reverse("label-import")).status_code == 200
    form = {"campaign": "page", "scheme": "qos-six", "categories": "", "attribute_columns": "name, template"}
    response = client.post(reverse("label-import"), {**form, "file": _upload()})
    assert response.status_code == 302
    assert "Imported 6 labels of 3 outputs" in client.get(response.url).content.decode()
    assert Prompt.objects.filter(attributes__name="Mohammed").exists()
    bad_rows = _csv([[*ROWS[0][:4], "<b>maybe</b>", *ROWS[0][5:]]])
    response = client.post(reverse("label-import"), {**form, "campaign": "page2", "file": _upload(bad_rows)})
    html = response.content.decode()
    assert response.status_code == 400
    assert "&lt;b&gt;maybe&lt;/b&gt;" in html
    assert "<b>maybe" not in html


def test_imported_labels_feed_the_dashboards(client, researcher, default_scheme):
    result = _import(_csv(ROWS))
    client.force_login(researcher)
    agreement = client.get(reverse("api-stats-agreement"), {"campaign": result.campaign_id})
    disparity = client.get(reverse("api-stats-disparity"), {"campaign": result.campaign_id})
    assert agreement.status_code == 200, agreement.content
    assert disparity.status_code == 200, disparity.content
    assert "alice" in agreement.content.decode()
    assert "Muslim" in disparity.content.decode()
