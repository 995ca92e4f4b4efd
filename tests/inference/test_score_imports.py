"""Importing scores made elsewhere: CSV and JSONL, by output id or prompt + model + sample, all or nothing."""

import json

import pytest
from django.core.management import CommandError, call_command

from annotations.core.exceptions import AuditError
from annotations.models import AuditEvent
from inference.models import Score, Scorer, ScoreRun
from inference.services.score_imports import scores_import
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def outputs(db):
    """Outputs of 2 templates x 2 names x 2 models (llama-7b, llama-13b), one sample each."""
    return factories.two_model_outputs()


@pytest.fixture
def imported(default_scheme):
    """An imported scorer assigning categories of the study's scheme."""
    return Scorer.objects.create(name="crowd", kind=Scorer.Kind.IMPORTED, scheme=default_scheme, version="v1")


@pytest.fixture
def flags(db):
    """An imported scorer without a scheme: flag scores only (like a toxicity classifier's)."""
    return Scorer.objects.create(name="toxicity", kind=Scorer.Kind.IMPORTED, version="v1")


def _csv(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def _jsonl(*records: dict) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def _errors(info) -> list[tuple]:
    return [(e["row"], e["field"], e["message"]) for e in info.value.errors]


def test_csv_by_output_id_with_categories_probabilities_and_raw(outputs, imported, admin_user_role):
    a, b = outputs[0], outputs[1]
    content = _csv(
        "output_id,category,p_answer,p_refusal-to-answer,raw",
        f"{a.pk},refusal-to-answer,0.1,0.9,REFUSE",
        f"{b.pk},answer,,,",
    )
    run = scores_import(scorer=imported, content=content, filename="crowd.csv", actor=admin_user_role)
    assert (run.name, run.status, run.generation_run, run.campaign) == (
        "import crowd.csv",
        ScoreRun.Status.COMPLETED,
        None,
        None,
    )
    assert run.scorer_version == "v1"
    assert run.created_by == admin_user_role
    first, second = run.scores.order_by("output_id")
    assert (first.output_id, first.status, first.category.key) == (
        a.pk,
        Score.Status.DONE,
        "refusal-to-answer",
    )
    assert first.probabilities == {"answer": 0.1, "refusal-to-answer": 0.9}
    assert first.raw == {"imported_from": "crowd.csv", "row": 2, "raw": "REFUSE"}
    assert (second.category.key, second.probabilities, second.raw) == (
        "answer",
        {},
        {"imported_from": "crowd.csv", "row": 3},
    )
    assert (first.scorer_version, first.flag_score, first.is_unparseable) == ("v1", None, False)
    event = AuditEvent.objects.get(action="score_run.import")
    assert event.details["scores"] == 2


def test_jsonl_by_prompt_key_or_text_model_and_sample(prompt_set, flags):
    run = factories.run_with_outputs(
        prompt_set, [factories.endpoint("llama-7b"), factories.endpoint("llama-13b")]
    )
    outputs = list(run.outputs.order_by("pk"))
    a, b = outputs[0], outputs[3]
    content = _jsonl(
        {"prompt": a.prompt.key, "model": a.endpoint.name, "sample": 0, "probability": 0.02},
        {"prompt": b.prompt.text, "model": b.endpoint.name, "probability": "0.75", "flagged": True},
        {
            "prompt_key": outputs[1].prompt.key,
            "model": outputs[1].endpoint.name,
            "probabilities": {"toxic": 0.3, "benign": 0.7},
            "raw": {"label": "benign"},
        },
    )
    run = scores_import(scorer=flags, content=content, filename="tox.jsonl", fmt=None, actor=None)
    scores = {s.output_id: s for s in run.scores.all()}
    assert (scores[a.pk].flag_score, scores[a.pk].is_flagged, scores[a.pk].category) == (0.02, None, None)
    assert (scores[b.pk].flag_score, scores[b.pk].is_flagged) == (0.75, True)
    third = scores[outputs[1].pk]
    assert third.probabilities == {"toxic": 0.3, "benign": 0.7}
    assert third.raw == {"imported_from": "tox.jsonl", "row": 3, "raw": {"label": "benign"}}


def test_every_problem_is_reported_with_its_row_and_column_and_nothing_is_saved(outputs, imported):
    a, b, c = outputs[0], outputs[1], outputs[2]
    content = _csv(
        "output_id,prompt,model,sample,category,probability,p_answer,p_harmful-answer",
        f"{a.pk},,,,answer,,,",  # fine
        "99999,,,,answer,,,",  # no such output
        f"{b.pk},,,,refusal,,,",  # unknown category
        f"{c.pk},,,,,1.5,,",  # flag score out of range
        f",{a.prompt.key},{a.endpoint.name},0,,,0.5,0.2",  # sums to 0.7; and a duplicate of row 2
        f",{b.prompt.key},nobody,,answer,,,",  # unknown model
        f",{b.prompt.key},{b.endpoint.name},x,answer,,,",  # bad sample
        "abc,,,,,,,",  # not an id, and no judgement
        f",{c.prompt.key},{c.endpoint.name},0,answer,,,",  # output c again (row 5 named it by id)
    )
    with pytest.raises(AuditError) as info:
        scores_import(scorer=imported, content=content, filename="bad.csv", actor=None)
    keys = "answer, partial-answer, failure-to-answer, refusal-to-answer, harmful-refusal, harmful-answer"
    errors = _errors(info)
    assert (3, "output_id", "No output 99999.") in errors
    assert (4, "category", f"Unknown category 'refusal'; the scheme has {keys}.") in errors
    assert (5, "probability", "'1.5' is not from 0 to 1.") in errors
    assert (6, "p_*", "The probabilities sum to 0.7, not 1.") in errors
    assert (6, "prompt", f"Output {a.pk} is also in row 2.") in errors
    assert (7, "model", "No model named 'nobody'.") in errors
    assert (8, "sample", "'x' is not a whole number from 0.") in errors
    assert (9, "output_id", "'abc' is not an output id.") in errors
    assert (9, "category", "Give category, probability or probabilities.") in errors
    assert (10, "prompt", f"Output {c.pk} is also in row 5.") in errors
    assert len(errors) == 10
    assert [row for row, _, _ in errors] == sorted(row for row, _, _ in errors)
    assert info.value.message == f"Nothing was imported: {len(errors)} problems."
    assert not ScoreRun.objects.exists()
    assert not Score.objects.exists()


def test_jsonl_probabilities_must_name_known_keys_between_0_and_1(outputs, imported):
    a, b, c = outputs[0], outputs[1], outputs[2]
    content = _jsonl(
        {"output_id": a.pk, "probabilities": {"answer": 0.5, "maybe": 0.5}},
        {"output_id": b.pk, "probabilities": {"answer": -0.1, "harmful-answer": 1.1}},
        {"output_id": c.pk, "probabilities": [0.5, 0.5]},
        {"output_id": outputs[3].pk, "probabilities": {"answer": 1}, "p_answer": 1},
    )
    with pytest.raises(AuditError) as info:
        scores_import(scorer=imported, content=content, filename="p.jsonl", actor=None)
    messages = {(row, message.split(";")[0]) for row, _, message in _errors(info)}
    assert messages == {
        (1, "Unknown category 'maybe'"),
        (2, "'-0.1' for 'answer' is not from 0 to 1."),
        (2, "'1.1' for 'harmful-answer' is not from 0 to 1."),
        (3, "Give a JSON object of category key -> probability."),
        (4, "Give probabilities or p_<key> columns, not both."),
    }
    assert {field for _, field, _ in _errors(info)} == {"probabilities"}


def test_outputs_already_scored_by_this_version_are_refused_and_named(outputs, imported):
    a, b = outputs[0], outputs[1]
    first = scores_import(
        scorer=imported, content=_csv("output_id,category", f"{a.pk},answer"), filename="one.csv", actor=None
    )
    content = _csv("output_id,category", f"{b.pk},answer", f"{a.pk},refusal-to-answer")
    with pytest.raises(AuditError) as info:
        scores_import(scorer=imported, content=content, filename="two.csv", actor=None)
    assert _errors(info) == [
        (
            3,
            "output_id",
            (
                f"Output {a.pk} already has a score of crowd (score run {first.pk}); scores are not "
                "replaced: leave the row out, or import it as another scorer."
            ),
        )
    ]
    assert Score.objects.count() == 1
    assert ScoreRun.objects.count() == 1
    # Another version of the scorer (a changed scheme or configuration) scores it anew.
    Scorer.objects.filter(pk=imported.pk).update(version="v2")
    imported.refresh_from_db()
    run = scores_import(scorer=imported, content=content, filename="two.csv", actor=None)
    assert run.scores.count() == 2
    assert run.scorer_version == "v2"


def test_ambiguous_prompts_ask_for_sample_then_run(default_scheme, imported):
    prompt_set = factories.prompt_set_with_prompts([factories.group_member()], [factories.template()])
    model = factories.endpoint("m-1")
    first = factories.run_with_outputs(prompt_set, [model], samples=2)
    second = factories.run_with_outputs(prompt_set, [model], samples=1)
    prompt = prompt_set.prompts.get()
    content = _csv(
        "prompt,model,sample,run,category",
        f"{prompt.text},m-1,,{first.pk},answer",
        f"{prompt.text},m-1,0,,answer",
        f"{prompt.text},m-1,1,{second.pk},answer",
    )
    with pytest.raises(AuditError) as info:
        scores_import(scorer=imported, content=content, filename="a.csv", actor=None)
    assert _errors(info) == [
        (2, "sample", "Samples 0, 1 match: give sample."),
        (3, "run", f"Outputs of runs {first.pk}, {second.pk} match: give run."),
        (4, "prompt", f"No output of model 'm-1', sample 1, in run {second.pk} for prompt {prompt.text!r}."),
    ]
    content = _csv(
        "prompt,model,sample,run,category",
        f"{prompt.key},m-1,1,,answer",  # the key; only the first run has a sample 1
        f"{prompt.text},m-1,0,{second.pk},harmful-answer",
    )
    run = scores_import(scorer=imported, content=content, filename="a.csv", actor=None)
    assert sorted(
        run.scores.values_list("output__run_id", "output__sample_index", "category__key")
    ) == sorted([(first.pk, 1, "answer"), (second.pk, 0, "harmful-answer")])


def test_a_text_shared_by_several_prompts_asks_for_the_key(outputs, imported):
    # two_model_outputs: both templates read "{name} got into the plane to [BLANK]"
    a = outputs[0]
    content = _csv("prompt,model,category", f"{a.prompt.text},{a.endpoint.name},answer")
    with pytest.raises(AuditError) as info:
        scores_import(scorer=imported, content=content, filename="t.csv", actor=None)
    assert _errors(info) == [(2, "prompt", "Several prompts have exactly this text: give prompt_key.")]


def test_only_an_active_imported_scorer_takes_a_file(outputs, default_scheme, imported, flags):
    content = _csv("output_id,category", f"{outputs[0].pk},answer")
    judge = Scorer.objects.create(
        name="judge", kind=Scorer.Kind.STRING_MATCH, scheme=default_scheme, version="v"
    )
    with pytest.raises(AuditError, match="'judge' is a string match scorer; only an imported scorer"):
        scores_import(scorer=judge, content=content, filename="a.csv", actor=None)
    with pytest.raises(AuditError) as info:
        scores_import(scorer=flags, content=content, filename="a.csv", actor=None)
    assert _errors(info) == [
        (2, "category", "The scorer 'toxicity' has no label scheme: give probability, not category.")
    ]
    Scorer.objects.filter(pk=imported.pk).update(is_active=False)
    imported.refresh_from_db()
    with pytest.raises(AuditError, match="not active"):
        scores_import(scorer=imported, content=content, filename="a.csv", actor=None)


def test_file_level_problems(outputs, imported):
    with pytest.raises(AuditError) as info:
        scores_import(scorer=imported, content=_csv("prompt,note", "x,y"), filename="h.csv", actor=None)
    assert {e["field"] for e in info.value.errors} == {"output_id", "category"}
    assert {e["row"] for e in info.value.errors} == {1}
    with pytest.raises(AuditError, match="Unknown format 'txt'"):
        scores_import(scorer=imported, content=b"x", filename="s.txt", actor=None)
    with pytest.raises(AuditError, match="no rows"):
        scores_import(scorer=imported, content=b"\n", filename="s.jsonl", actor=None)
    with pytest.raises(AuditError, match="not JSON objects"):
        scores_import(scorer=imported, content=b"[1]\n", filename="s.txt", fmt="jsonl", actor=None)


def test_command_imports_and_reports_errors_by_row_and_column(outputs, imported, tmp_path, capsys, settings):
    good = tmp_path / "crowd.jsonl"
    good.write_bytes(_jsonl({"output_id": outputs[0].pk, "category": "answer"}))
    call_command("import_scores", str(good), "--scorer", "crowd")
    run = ScoreRun.objects.get()
    assert capsys.readouterr().out.strip() == (
        f"Imported 1 scores of crowd (version v1) as score run {run.pk} (import crowd.jsonl)."
    )
    bad = tmp_path / "bad.txt"
    bad.write_bytes(_csv("output_id,category", "99999,answer", f"{outputs[1].pk},nope"))
    with pytest.raises(CommandError) as info:
        call_command("import_scores", str(bad), "--scorer", "crowd", "--format", "csv")
    lines = str(info.value).splitlines()
    assert lines[0] == "Nothing was imported: 2 problems."
    assert lines[1] == "  row 2, column output_id: No output 99999."
    assert lines[2].startswith("  row 3, column category: Unknown category 'nope'; the scheme has answer, ")
    with pytest.raises(CommandError, match="No scorer named 'nobody'; register one"):
        call_command("import_scores", str(good), "--scorer", "nobody")
    settings.AUDIT_UPLOAD_MAX_BYTES = 10
    with pytest.raises(CommandError, match=r"The upload was rejected: the file is .* the limit is 10 bytes"):
        call_command("import_scores", str(good), "--scorer", "crowd")
    assert ScoreRun.objects.count() == 1
