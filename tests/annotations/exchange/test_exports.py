"""Exports of labelled data: one row per label and one row per output, as CSV, JSONL and Parquet."""

import csv
import io
import json

import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command
from django.http import StreamingHttpResponse
from django.urls import reverse

from annotations.exchange.exports import csv_cell_neutralise, export_open
from annotations.models import AuditEvent, CampaignItem
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def labelled(default_scheme, make_user):
    """A campaign of two outputs: one labelled alike by two annotators, one disputed; hostile texts."""
    members = [factories.group_member("Mohammed", "Muslim", "name"), factories.group_member("Emily", "White")]
    prompt_set = factories.prompt_set_with_prompts(members, [factories.template("plane")])
    run = factories.run_with_outputs(
        prompt_set, [factories.endpoint("llama-2-7b-chat")], text="=HYPERLINK(1)"
    )
    ann1, ann2 = make_user("annotator", "ann-a"), make_user("annotator", "ann-b")
    outputs = list(run.outputs.order_by("id"))
    campaign = factories.campaign_with_items(default_scheme, outputs, annotators=[ann1, ann2])
    first, second = campaign.items.order_by("rank")
    factories.label(first, ann1, "answer")
    factories.label(first, ann2, "answer")
    refusal = factories.label(second, ann1, "refusal-to-answer")
    refusal.note = "@SUM(A1) -2 +cmd"
    refusal.save()
    factories.label(second, ann2, "answer")
    CampaignItem.objects.filter(pk=first.pk).update(
        status="complete",
        final_category=default_scheme.categories.get(key="answer"),
        final_source="unanimous",
    )
    return campaign


def _body(response) -> bytes:
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content)


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_csv_formula_cells_are_neutralised(value):
    assert csv_cell_neutralise(value) == "'" + value


@pytest.mark.parametrize("value", ["plain", "a=b", "", 3, -1, None])
def test_csv_other_cells_are_unchanged(value):
    assert csv_cell_neutralise(value) == value


def test_labels_csv_has_one_row_per_label_with_every_column(labelled, researcher):
    export = export_open(actor=researcher, kind="labels", file_format="csv", campaign_id=labelled.pk)
    rows = list(csv.DictReader(io.StringIO(b"".join(export.chunks).decode())))
    assert len(rows) == 4
    expected = {
        "output_id", "prompt", "template", "axis", "group", "member", "model", "sample", "annotator",
        "label_key", "label_name", "note", "active_seconds", "created_at", "updated_at", "campaign",
    }  # fmt: skip
    assert expected <= set(rows[0])
    refusal = next(r for r in rows if r["label_key"] == "refusal-to-answer")
    assert refusal["note"] == "'@SUM(A1) -2 +cmd"
    assert refusal["output"] == "'=HYPERLINK(1)"
    assert refusal["model"] == "llama-2-7b-chat"
    assert refusal["template"] == "plane"
    assert refusal["label_name"] == "Refusal to answer"
    assert {r["group"] for r in rows} == {"muslim", "white"}
    assert {r["annotator"] for r in rows} == {"ann-a", "ann-b"}
    assert export.filename == f"labels-campaign-{labelled.pk}.csv"


def test_outputs_jsonl_has_one_row_per_output_with_its_final_label(labelled, researcher):
    export = export_open(actor=researcher, kind="outputs", file_format="jsonl", campaign_id=labelled.pk)
    rows = [json.loads(line) for line in b"".join(export.chunks).decode().splitlines()]
    assert len(rows) == 2
    finals = {(r["final_label_key"], r["final_source"], r["status"]) for r in rows}
    assert finals == {(None, "", "disputed"), ("answer", "unanimous", "complete")}
    assert rows[0]["output"] == "=HYPERLINK(1)"  # JSON is not a spreadsheet: kept verbatim


@pytest.mark.parametrize("kind", ["labels", "outputs"])
def test_parquet_export_reads_back(labelled, researcher, kind):
    export = export_open(actor=researcher, kind=kind, file_format="parquet")
    table = pq.read_table(io.BytesIO(b"".join(export.chunks)))
    assert table.num_rows == (4 if kind == "labels" else 2)
    assert "model" in table.column_names
    if kind == "labels":
        assert str(table.schema.field("created_at").type).startswith("timestamp")
        assert sorted(table.column("label_key").to_pylist()).count("answer") == 3


def test_parquet_of_nothing_is_a_valid_empty_file(db, researcher):
    table = pq.read_table(
        io.BytesIO(b"".join(export_open(actor=researcher, kind="labels", file_format="parquet").chunks))
    )
    assert table.num_rows == 0
    assert "label_key" in table.column_names


def test_each_export_is_audited(labelled, researcher):
    export_open(actor=researcher, kind="labels", file_format="csv", campaign_id=labelled.pk)
    event = AuditEvent.objects.get(action="data.export")
    assert event.actor == researcher
    assert event.target_id == str(labelled.pk)
    assert event.details["format"] == "csv"


def test_api_export_streams_for_researchers(client, labelled, researcher):
    client.force_login(researcher)
    response = client.get(
        reverse("api-export", args=["labels"]), {"file_format": "csv", "campaign": labelled.pk}
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    assert _body(response).count(b"\n") == 5


def test_api_export_bad_format_and_unknown_campaign(client, labelled, researcher):
    client.force_login(researcher)
    assert client.get(reverse("api-export", args=["labels"]), {"file_format": "xls"}).status_code == 400
    assert client.get(reverse("api-export", args=["rows"])).status_code == 400
    response = client.get(reverse("api-export", args=["labels"]), {"campaign": labelled.pk + 999})
    assert response.status_code == 404


@pytest.mark.parametrize("role", ["annotator", None])
def test_api_export_refused_to_annotators_and_no_role(client, labelled, make_user, role):
    client.force_login(make_user(role))
    response = client.get(reverse("api-export", args=["labels"]), {"campaign": labelled.pk})
    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action="data.export").exists()


def test_export_page_downloads_and_refuses_annotators(client, labelled, researcher, annotator):
    client.force_login(annotator)
    assert client.get(reverse("export-form")).status_code == 403
    client.force_login(researcher)
    page = client.get(reverse("export-form"))
    assert page.status_code == 200
    assert labelled.name in page.content.decode()
    response = client.get(reverse("export-form"), {"kind": "outputs", "file_format": "jsonl", "campaign": ""})
    assert len(_body(response).splitlines()) == 2
    bad = client.get(reverse("export-form"), {"kind": "outputs", "file_format": "jsonl", "campaign": "x"})
    assert bad.status_code == 400


def test_export_command_to_file_and_stdout(labelled, tmp_path, capsysbinary):
    target = tmp_path / "labels.parquet"
    call_command("export_labels", "--format", "parquet", "-o", str(target))
    assert pq.read_table(target).num_rows == 4
    call_command("export_labels", "--kind", "outputs", "--campaign", str(labelled.pk))
    out = capsysbinary.readouterr().out.decode()
    assert out.splitlines()[0].startswith("campaign_id,campaign,item_id")
    assert len(out.splitlines()) == 3
    with pytest.raises(CommandError, match="No such campaign"):
        call_command("export_labels", "--campaign", "999999")
