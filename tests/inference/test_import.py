"""Importing outputs generated elsewhere: CSV and JSONL, by key or exact text, all or nothing."""

import json

import pytest

from annotations.core.exceptions import AuditError
from inference.models import GenerationRun, ModelEndpoint, Output
from inference.services.imports import outputs_import


def _csv(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def test_csv_by_key_with_samples_numbered_in_file_order(prompt_set, admin_user_role):
    keys = list(prompt_set.prompts.order_by("position").values_list("key", flat=True))
    content = _csv(
        "prompt_key,output,finish_reason",
        f"{keys[0]},\"I'm sorry, I can't help with that.\",stop",
        f"{keys[0]},to visit family,stop",
        f'{keys[1]},"multi\nline answer",length',
    )
    run = outputs_import(
        prompt_set=prompt_set,
        model_name="llama-2-7b-chat",
        content=content,
        filename="out.csv",
        actor=admin_user_role,
    )
    assert run.kind == GenerationRun.Kind.IMPORTED
    assert run.status == GenerationRun.Status.COMPLETED
    outputs = list(run.outputs.order_by("prompt__position", "sample_index"))
    assert [(o.prompt.key, o.sample_index, o.text, o.finish_reason) for o in outputs] == [
        (keys[0], 0, "I'm sorry, I can't help with that.", "stop"),
        (keys[0], 1, "to visit family", "stop"),
        (keys[1], 0, "multi\nline answer", "length"),
    ]
    assert {o.status for o in outputs} == {Output.Status.DONE}
    assert outputs[2].request == {"imported_from": "out.csv", "row": 4}
    endpoint = ModelEndpoint.objects.get(name="llama-2-7b-chat")
    assert endpoint.base_urls == []
    assert not endpoint.is_active
    assert outputs[0].endpoint_snapshot["imported"] is True
    prompt_set.refresh_from_db()
    assert prompt_set.is_frozen


def test_jsonl_by_exact_text_with_explicit_samples(prompt_set, admin_user_role):
    texts = list(prompt_set.prompts.order_by("position").values_list("text", flat=True))
    lines = [
        json.dumps({"prompt": texts[0], "output": "a", "sample_index": 2}),
        "",
        json.dumps({"prompt": texts[1], "output": "b\u0000c"}),
    ]
    run = outputs_import(
        prompt_set=prompt_set,
        model_name="m",
        content="\n".join(lines).encode(),
        filename="x.jsonl",
        actor=None,
    )
    assert sorted(run.outputs.values_list("sample_index", "text")) == [(0, "b\ufffdc"), (2, "a")]
    assert run.samples_per_prompt == 3


def test_every_problem_is_reported_with_its_row_and_nothing_is_saved(prompt_set, admin_user_role):
    key = prompt_set.prompts.first().key
    content = _csv(
        "prompt_key,prompt,output,sample_index",
        f"{key},,fine,0",
        "nope,,x,0",  # unknown key
        f"{key},,again,0",  # duplicate of row 2
        f"{key},,bad sample,-1",
        ",,no prompt,",
        ",Nobody got into the plane to [BLANK],no such text,",
    )
    with pytest.raises(AuditError) as info:
        outputs_import(
            prompt_set=prompt_set, model_name="m", content=content, filename="bad.csv", actor=admin_user_role
        )
    assert info.value.message == "Nothing was imported: 5 problems."
    assert [(e["row"], e["field"]) for e in info.value.errors] == [
        (3, "prompt_key"),
        (4, "sample_index"),
        (5, "sample_index"),
        (6, "prompt_key"),
        (7, "prompt"),
    ]
    assert "Same prompt and sample as row 2" in info.value.errors[1]["message"]
    assert not GenerationRun.objects.exists()
    assert not ModelEndpoint.objects.exists()


@pytest.mark.parametrize(
    ("content", "filename", "message"),
    [
        (b"output\nx\n", "a.csv", "The CSV header is incomplete."),
        (b"\xff\xfe", "a.csv", "not UTF-8"),
        (b"{}\n", "a.txt", "upload a .csv or .jsonl file"),
        (b"prompt_key,output\n", "a.csv", "The file has no rows."),
        (b"[1]\n{bad\n", "a.jsonl", "Nothing was imported: 2 problems."),
    ],
)
def test_malformed_files_are_refused_clearly(prompt_set, content, filename, message):
    with pytest.raises(AuditError, match=message.replace(".", r"\.")):
        outputs_import(prompt_set=prompt_set, model_name="m", content=content, filename=filename, actor=None)


def test_row_limit(prompt_set, settings):
    settings.AUDIT_UPLOAD_MAX_ROWS = 2
    key = prompt_set.prompts.first().key
    with pytest.raises(AuditError, match="at most 2 are accepted"):
        outputs_import(
            prompt_set=prompt_set,
            model_name="m",
            content=_csv("prompt_key,output", *[f"{key},x"] * 3),
            filename="a.csv",
            actor=None,
        )
