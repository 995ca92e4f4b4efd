"""Generation in-process against the fault-injecting fake server: provenance, faults, lifecycle."""

import pytest
from django.db import IntegrityError

from inference.models import GenerationRun, Output
from inference.services.generation import outputs_generate
from inference.services.runs import run_generate_in_process, run_start
from tests import factories
from tests.support.fake_openai import answer_for, render_messages

from .conftest import SYSTEM


def _start(prompt_set, endpoints, **kwargs):
    kwargs.setdefault("samples_per_prompt", 1)
    return run_start(prompt_set=prompt_set, endpoints=endpoints, dispatch=False, **kwargs)


def test_run_start_creates_one_pending_output_per_prompt_model_sample(prompt_set, chat_endpoint):
    other = factories.endpoint(name="other", base_urls=["http://127.0.0.1:9/v1"])
    run = _start(prompt_set, [chat_endpoint, other], samples_per_prompt=3)
    assert run.outputs.count() == 6 * 2 * 3
    assert set(run.outputs.values_list("status", flat=True)) == {Output.Status.PENDING}
    prompt_set.refresh_from_db()
    assert prompt_set.is_frozen
    first = run.outputs.first()
    with pytest.raises(IntegrityError):
        Output.objects.create(run=run, prompt=first.prompt, endpoint=first.endpoint, sample_index=0)


def test_outputs_record_text_tokens_and_provenance(prompt_set, chat_endpoint, fake_server):
    run = _start(prompt_set, [chat_endpoint], samples_per_prompt=2)
    report = run_generate_in_process(run=run)
    assert (report.done, report.failed) == (12, 0)
    run.refresh_from_db()
    assert run.status == GenerationRun.Status.COMPLETED
    assert run.finished_at is not None
    output = run.outputs.select_related("prompt").get(prompt__position=0, sample_index=1)
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": output.prompt.text}]
    assert output.request == {
        "model": "fake-model",
        "messages": messages,
        "temperature": 0.7,
        "top_p": 0.9,
        "max_tokens": 32,
        "seed": 1235,  # seed + sample index
        "stop": ["\n\n"],
    }
    assert output.text == answer_for(render_messages(messages))
    assert output.finish_reason == "stop"
    assert output.prompt_tokens > 0
    assert output.completion_tokens > 0
    assert output.latency_ms > 0
    assert output.attempts == 1
    assert output.last_error == ""
    assert output.started_at <= output.finished_at
    assert output.endpoint_snapshot == {
        "endpoint_id": chat_endpoint.pk,
        "name": "fake-chat",
        "url": fake_server.base_url,
        "served_model_name": "fake-model",
        "model_id": "fake-model",
        "max_model_len": 2048,
        "api_mode": "chat",
        "response_model": "fake-model",
    }
    assert max(fake_server.completed_counts.values()) == 2  # the two samples of one prompt


def test_completion_mode_sends_the_bare_prompt(prompt_set, fake_server):
    base = factories.endpoint(
        name="base",
        base_urls=[fake_server.base_url],
        served="fake-model",
        api_mode="completion",
        max_tokens=4,
    )
    run = _start(prompt_set, [base])
    run_generate_in_process(run=run)
    output = run.outputs.select_related("prompt").first()
    assert output.request["prompt"] == output.prompt.text
    assert "messages" not in output.request
    assert "seed" not in output.request
    assert output.finish_reason == "length"
    assert output.completion_tokens == 4


def test_a_second_delivery_of_a_chunk_does_nothing(prompt_set, chat_endpoint, fake_server):
    run = _start(prompt_set, [chat_endpoint])
    ids = list(run.outputs.values_list("pk", flat=True))
    outputs_generate(run_id=run.pk, output_ids=ids)
    before = list(run.outputs.order_by("pk").values("pk", "text", "finished_at", "attempts"))
    report = outputs_generate(run_id=run.pk, output_ids=ids)
    assert report.claimed == 0
    assert list(run.outputs.order_by("pk").values("pk", "text", "finished_at", "attempts")) == before
    assert fake_server.request_count == 6


def test_concurrency_limit_and_replicas(prompt_set, db):
    from tests.support.fake_openai import FakeOpenAIServer, slow

    with FakeOpenAIServer(models=["fake-model"]) as one, FakeOpenAIServer(models=["fake-model"]) as two:
        for server in (one, two):
            server.set_rule(lambda info: slow(0.3))
        endpoint = factories.endpoint(
            name="replicated",
            base_urls=[one.base_url, two.base_url],
            served="fake-model",
            concurrency_limit=3,
        )
        run = _start(prompt_set, [endpoint], samples_per_prompt=2)
        run_generate_in_process(run=run)
        records = sorted(one.records + two.records, key=lambda r: r.received_at)
        urls = {one.base_url, two.base_url}
    assert run.outputs.filter(status=Output.Status.DONE).count() == 12
    assert (one.request_count, two.request_count) == (6, 6)
    # With 3 in flight and 0.3 s answers, requests arrive in waves of 3 about 0.3 s apart: the n+3-th
    # request is sent only once one of the n-th to n+2-th has been answered, at least 0.3 s after the
    # n-th arrived. A lower bound, so a busy machine (which only spaces the waves out) cannot break it.
    for n, (first, fourth) in enumerate(zip(records, records[3:], strict=False)):
        gap = fourth.received_at - first.received_at
        assert gap > 0.2, f"request {n + 3} arrived {gap:.3f} s after request {n}: more than 3 in flight"
    assert {o.endpoint_snapshot["url"] for o in run.outputs.all()} == urls
