"""End to end against a real vLLM OpenAI-compatible server on CPU (tiny random Llama).

A run goes through a real Celery worker consuming from Redis and writing to PostgreSQL. The text is
gibberish (random weights) but the server, the chat template and the API are real.
"""

import pytest

from inference.models import GenerationRun, Output
from inference.services.endpoints import endpoint_check
from inference.services.runs import run_generate_in_process, run_start
from tests import factories

from .conftest import SYSTEM

pytestmark = pytest.mark.vllm


def _endpoints(server):
    chat = factories.endpoint(
        name="tiny-chat",
        base_urls=[server.base_url],
        served="tiny-llama",
        api_mode="chat",
        system_prompt=SYSTEM,
        temperature=0.8,
        max_tokens=12,
        seed=42,
        concurrency_limit=16,
        request_timeout=60,
    )
    base = factories.endpoint(
        name="tiny-base",
        base_urls=[server.base_url],
        served="tiny-llama",
        api_mode="completion",
        temperature=0.0,
        max_tokens=8,
        concurrency_limit=16,
        request_timeout=60,
    )
    return chat, base


@pytest.mark.celery_worker
def test_a_run_end_to_end_through_a_celery_worker(vllm_tiny_server, celery_worker_process, prompt_set):
    chat, base = _endpoints(vllm_tiny_server)
    run = run_start(prompt_set=prompt_set, endpoints=[chat, base], samples_per_prompt=3, chunk_size=10)
    celery_worker_process.wait_for(
        lambda: GenerationRun.objects.get(pk=run.pk).status == GenerationRun.Status.COMPLETED,
        timeout=120,
        what="the run to complete",
    )
    assert run.outputs.filter(status=Output.Status.DONE).count() == 6 * 2 * 3
    for output in run.outputs.select_related("prompt", "endpoint"):
        assert output.finish_reason in {"stop", "length"}
        assert 0 < output.completion_tokens <= output.endpoint.max_tokens
        assert output.prompt_tokens > 0
        assert output.attempts == 1
        assert output.endpoint_snapshot["url"] == vllm_tiny_server.base_url
        assert output.endpoint_snapshot["model_id"] == "tiny-llama"
        assert output.endpoint_snapshot["max_model_len"] == 2048
        if output.endpoint == chat:
            assert output.request["messages"][0] == {"role": "system", "content": SYSTEM}
            assert output.request["seed"] == 42 + output.sample_index
        else:
            assert output.request["prompt"] == output.prompt.text
    # Greedy plain completions of one prompt agree across samples; the chat prompt (with the system
    # prompt and the chat template) counts more prompt tokens than the bare prompt.
    first_prompt = run.outputs.filter(prompt__position=0)
    assert first_prompt.filter(endpoint=base).values("text").distinct().count() == 1
    chat_tokens = first_prompt.filter(endpoint=chat).values_list("prompt_tokens", flat=True).first()
    base_tokens = first_prompt.filter(endpoint=base).values_list("prompt_tokens", flat=True).first()
    assert chat_tokens > base_tokens
    assert "Task inference.generate_chunk[" in celery_worker_process.log_tail(50000)


def test_a_prompt_longer_than_the_context_fails_at_once_with_vllms_message(vllm_tiny_server, db):
    chat, _ = _endpoints(vllm_tiny_server)
    member = factories.group_member("Fatima", "Muslim")
    long_text = factories.template(text="{name} " + "went to the market and " * 600 + "[BLANK]")
    prompt_set = factories.prompt_set_with_prompts([member], [long_text, factories.template()])
    run = run_start(prompt_set=prompt_set, endpoints=[chat], samples_per_prompt=1, dispatch=False)
    run_generate_in_process(run=run)
    failed = run.outputs.get(prompt__template=long_text)
    assert failed.status == Output.Status.FAILED
    assert failed.attempts == 1
    assert "HTTP 400" in failed.last_error
    assert "context length" in failed.last_error
    assert run.outputs.get(status=Output.Status.DONE).prompt.template != long_text
    assert vllm_tiny_server.is_alive()


def test_test_connection_shows_what_vllm_says(vllm_tiny_server, db):
    chat, _ = _endpoints(vllm_tiny_server)
    result = endpoint_check(endpoint=chat)
    assert result["ok"] is True
    assert result["replicas"][0]["model_ids"] == ["tiny-llama"]
    assert result["replicas"][0]["max_model_len"] == 2048
    wrong = factories.endpoint(name="wrong", base_urls=[vllm_tiny_server.base_url], served="llama-2-7b-chat")
    assert (
        endpoint_check(endpoint=wrong)["replicas"][0]["error"]
        == "the server does not serve 'llama-2-7b-chat'"
    )
