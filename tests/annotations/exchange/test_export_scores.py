"""The `score_<scorer>` columns of the outputs export: one per scorer that scored the exported outputs."""

import csv
import io
import json

import pyarrow.parquet as pq
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotations.exchange.exports import export_open
from inference.models import Score, Scorer, ScoreRun
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def scored(default_scheme):
    """Two campaigns over 4 outputs; a category scorer with two versions, a flag scorer, an idle one."""
    outputs = factories.two_model_outputs()
    campaign = factories.campaign_with_items(default_scheme, outputs[:3])
    other = factories.campaign_with_items(default_scheme, outputs[3:4])
    category = {c.key: c for c in default_scheme.categories.all()}
    refusals = Scorer.objects.create(
        name="xs-test", kind="string_match", scheme=default_scheme, version="old"
    )
    toxicity = Scorer.objects.create(name="toxicity", kind="classifier", version="t1")
    Scorer.objects.create(name="idle", kind="imported", scheme=default_scheme, version="i1")

    def scores(scorer, version, values):
        run = ScoreRun.objects.create(name=version, scorer=scorer, scorer_version=version, status="completed")
        Score.objects.bulk_create(
            Score(run=run, scorer=scorer, scorer_version=version, output=output, **fields)
            for output, fields in values
        )

    scores(
        refusals,
        "old",
        [
            (outputs[0], {"status": "done", "category": category["answer"]}),
            (outputs[1], {"status": "done", "category": category["answer"]}),
        ],
    )
    scores(
        refusals,
        "new",
        [
            (outputs[0], {"status": "done", "category": category["refusal-to-answer"]}),
            (outputs[1], {"status": "failed"}),  # not done: the old version's score stands
            (outputs[2], {"status": "done", "is_unparseable": True}),  # no category: blank
        ],
    )
    scores(toxicity, "t1", [(outputs[1], {"status": "done", "flag_score": 0.25, "is_flagged": False})])
    scores(toxicity, "t1-other", [(outputs[3], {"status": "done", "flag_score": 0.9})])
    return campaign, other, outputs


def _rows(campaign_id: int | None, file_format: str = "csv") -> bytes:
    export = export_open(actor=None, kind="outputs", file_format=file_format, campaign_id=campaign_id)
    return b"".join(export.chunks)


def test_one_column_per_scorer_with_the_newest_done_score(scored):
    campaign, _, outputs = scored
    rows = list(csv.DictReader(io.StringIO(_rows(campaign.pk).decode())))
    assert list(rows[0])[-3:] == ["final_source", "score_toxicity", "score_xs-test"]
    assert [(int(r["output_id"]), r["score_xs-test"], r["score_toxicity"]) for r in rows] == [
        (outputs[0].pk, "refusal-to-answer", ""),
        (outputs[1].pk, "answer", "0.25"),
        (outputs[2].pk, "", ""),
    ]


def test_only_scorers_of_the_exported_outputs_get_a_column(scored):
    _, other, _ = scored
    records = [json.loads(line) for line in _rows(other.pk, "jsonl").splitlines()]
    assert records == [records[0]]
    assert {k: v for k, v in records[0].items() if k.startswith("score_")} == {"score_toxicity": 0.9}
    everything = [json.loads(line) for line in _rows(None, "jsonl").splitlines()]
    assert [r["score_toxicity"] for r in everything] == [None, 0.25, None, 0.9]
    assert "score_idle" not in everything[0]


def test_parquet_types_score_columns_even_when_the_first_rows_are_blank(scored, tmp_path):
    campaign, _, _ = scored
    target = tmp_path / "outputs.parquet"
    target.write_bytes(_rows(campaign.pk, "parquet"))
    table = pq.read_table(target)
    assert str(table.schema.field("score_toxicity").type) == "double"
    assert str(table.schema.field("score_xs-test").type) == "string"
    assert table.column("score_toxicity").to_pylist() == [None, 0.25, None]


def test_the_export_stays_one_query_for_the_rows(scored):
    campaign, _, _ = scored
    with CaptureQueriesContext(connection) as opening:
        export = export_open(actor=None, kind="outputs", file_format="csv", campaign_id=campaign.pk)
    with CaptureQueriesContext(connection) as streaming:
        b"".join(export.chunks)
    # Opening: the campaign, which scorers have scores, the audit event; streaming: the rows (plus
    # SET LOCAL jit on PostgreSQL), not a query per row or per scorer.
    assert sum(_is_select(q) for q in opening.captured_queries) == 2
    assert sum(_is_select(q) for q in streaming.captured_queries) == 1


def _is_select(query: dict) -> bool:
    return query["sql"].lstrip().upper().startswith(("SELECT", "DECLARE"))
