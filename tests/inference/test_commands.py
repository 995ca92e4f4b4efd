"""The command-line side: endpoint_add, generate (in-process, with a progress bar), import_outputs."""

import pytest
from django.core.management import CommandError, call_command

from inference.models import GenerationRun, ModelEndpoint, Output
from tests.support.fake_openai import service_unavailable


def _call(*args):
    from io import StringIO

    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.usefixtures("fast_backoff")
def test_register_then_generate_in_process_then_continue(prompt_set, fake_server):
    out, _ = _call(
        "endpoint_add",
        "llama-chat",
        "--url",
        fake_server.base_url,
        "--served-model-name",
        "fake-model",
        "--system-prompt",
        "You are a helpful assistant. Complete the [BLANK].",
        "--seed",
        "3",
        "--check",
    )
    assert "Registered model endpoint llama-chat" in out
    assert "ok; serves fake-model" in out
    endpoint = ModelEndpoint.objects.get(name="llama-chat")
    assert endpoint.seed == 3

    fake_server.set_rule(lambda info: service_unavailable() if "Jake" in info.prompt else None)
    out, err = _call(
        "generate",
        "--prompt-set",
        prompt_set.name,
        "--model",
        "llama-chat",
        "--samples",
        "3",
        "--max-attempts",
        "2",
    )
    run = GenerationRun.objects.get()
    assert f"Run {run.pk}" in out
    assert "Finished with failures: 12 done, 6 failed, 0 to do" in out
    assert "18/18" in err  # the terminal progress bar (tqdm) reached the end
    fake_server.clear_faults()
    out, _ = _call("generate", "--run", str(run.pk), "--no-progress")
    assert "Completed: 18 done, 0 failed" in out
    assert run.outputs.filter(status=Output.Status.DONE).count() == 18


def test_command_errors_are_clear(prompt_set, db):
    with pytest.raises(CommandError, match="Give --prompt-set and at least one --model"):
        _call("generate")
    with pytest.raises(CommandError, match="No model endpoint named ghost"):
        _call("generate", "--prompt-set", str(prompt_set.pk), "--model", "ghost")
    with pytest.raises(CommandError, match="not an http"):
        _call("endpoint_add", "x", "--url", "localhost:8000")


def test_import_outputs_command(prompt_set, tmp_path):
    keys = list(prompt_set.prompts.values_list("key", flat=True))
    good = tmp_path / "good.csv"
    good.write_text("prompt_key,output\n" + "".join(f"{k},answer\n" for k in keys))
    out, _ = _call("import_outputs", str(good), "--prompt-set", str(prompt_set.pk), "--model", "llama-1-7b")
    assert "Imported 6 outputs" in out
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt_key": "x", "output": "y"}\n')
    with pytest.raises(CommandError, match=r"row 1, prompt_key: No prompt with key 'x'"):
        _call("import_outputs", str(bad), "--prompt-set", str(prompt_set.pk), "--model", "llama-1-7b")
    assert GenerationRun.objects.count() == 1
