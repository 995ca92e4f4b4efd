"""Faults against the fake server: retried with backoff, or failed at once; cancel, resume, retry."""

import random
import time

import pytest

from annotations.core.exceptions import AuditError
from inference.engine import RetryPolicy
from inference.models import GenerationRun, Output
from inference.services.generation import outputs_claim, outputs_generate
from inference.services.runs import run_cancel, run_generate_in_process, run_resume, run_retry, run_start
from tests import factories
from tests.support.fake_openai import (
    context_length_exceeded,
    drop_connection,
    first_attempts_fail,
    held,
    rate_limited,
    server_error,
    service_unavailable,
    slow,
)

pytestmark = pytest.mark.usefixtures("fast_backoff")

# The "timeout" cases: the server holds the request and never answers, so the client gives up after
# the endpoint's request_timeout. 1 s is far above what an answer that does come takes (milliseconds,
# tens of them on a busy machine), so only the held requests time out; the other cases keep the
# fixture's 5 s. Each held request costs the test this second.
TIMEOUT_S = 1.0


def _run(prompt_set, endpoint, **kwargs):
    return run_start(
        prompt_set=prompt_set, endpoints=[endpoint], samples_per_prompt=1, dispatch=False, **kwargs
    )


@pytest.mark.parametrize(
    "fault",
    [
        server_error(),
        service_unavailable(),
        rate_limited(retry_after=0),
        drop_connection(),
        drop_connection(reset=True),
        held(),
    ],
    ids=["500", "503", "429", "dropped", "reset", "timeout"],
)
def test_transient_faults_are_retried_until_the_answer_comes(prompt_set, chat_endpoint, fake_server, fault):
    if fault.hold:
        chat_endpoint.request_timeout = TIMEOUT_S
        chat_endpoint.save()
    fake_server.set_rule(first_attempts_fail(2, fault))
    run = _run(prompt_set, chat_endpoint)
    report = run_generate_in_process(run=run)
    assert (report.done, report.failed) == (6, 0)
    assert set(run.outputs.values_list("attempts", flat=True)) == {3}
    assert set(run.outputs.values_list("last_error", flat=True)) == {""}
    assert max(fake_server.completed_counts.values()) == 1
    assert set(fake_server.prompt_counts.values()) == {3}  # two faults, then the answer


@pytest.mark.parametrize(
    ("fault", "error_part"),
    [
        (server_error("engine crashed"), "HTTP 500 from http://127.0.0.1:"),
        (rate_limited(retry_after=0), "Rate limit reached"),
        (drop_connection(), "RemoteProtocolError"),
        (held(), f"timed out after {TIMEOUT_S:g} s"),
    ],
    ids=["500", "429", "dropped", "timeout"],
)
def test_persistent_transient_faults_fail_after_max_attempts(
    prompt_set, chat_endpoint, fake_server, fault, error_part
):
    if fault.hold:
        chat_endpoint.request_timeout = TIMEOUT_S
        chat_endpoint.save()
    fake_server.set_rule(lambda info: fault)
    run = _run(prompt_set, chat_endpoint, max_attempts=3)
    report = run_generate_in_process(run=run)
    assert (report.done, report.failed) == (0, 6)
    run.refresh_from_db()
    assert run.status == GenerationRun.Status.FAILED
    for output in run.outputs.all():
        assert output.status == Output.Status.FAILED
        assert output.attempts == 3
        assert error_part in output.last_error
        assert output.last_error.endswith("(after 3 attempts)")
        assert output.text == ""
        assert output.request["messages"][-1]["role"] == "user"
    assert fake_server.request_count == 18


def test_connection_refused_is_retried_then_failed(prompt_set, db):
    endpoint = factories.endpoint(name="down", base_urls=["http://127.0.0.1:9/v1"], request_timeout=2)
    run = _run(prompt_set, endpoint, max_attempts=2)
    run_generate_in_process(run=run)
    output = run.outputs.first()
    assert output.status == Output.Status.FAILED
    assert output.attempts == 2
    assert "ConnectError" in output.last_error
    assert output.endpoint_snapshot["url"] == "http://127.0.0.1:9/v1"
    assert output.endpoint_snapshot["model_id"] == ""  # /v1/models never answered


def test_other_4xx_fail_at_once_with_the_servers_message(prompt_set, chat_endpoint, fake_server):
    fake_server.set_rule(lambda info: context_length_exceeded() if "Jake" in info.prompt else None)
    run = _run(prompt_set, chat_endpoint)
    run_generate_in_process(run=run)
    failed = run.outputs.filter(status=Output.Status.FAILED)
    assert failed.count() == 2
    for output in failed:
        assert output.attempts == 1
        assert "HTTP 400" in output.last_error
        assert "maximum context length is 2048 tokens" in output.last_error
    assert run.outputs.filter(status=Output.Status.DONE).count() == 4
    assert fake_server.request_count == 6


def test_backoff_grows_exponentially_with_jitter_and_honours_retry_after():
    policy = RetryPolicy(max_attempts=6, base_delay=1.0, max_delay=10.0)
    rng = random.Random(0)
    for attempt, (low, high) in enumerate([(0.5, 1), (1, 2), (2, 4), (4, 8), (5, 10), (5, 10)], start=1):
        delays = {policy.delay(attempt, rng=rng) for _ in range(50)}
        assert low <= min(delays)
        assert max(delays) <= high
        assert len(delays) > 40  # jittered, not a constant
    assert policy.delay(1, retry_after=7.0, rng=rng) == 7.0
    assert policy.delay(1, retry_after=600.0, rng=rng) == 10.0  # capped


def test_cancel_stops_a_running_chunk_and_resume_finishes_the_run(
    prompt_set, chat_endpoint, fake_server, admin_user_role
):
    # One request at a time, 0.3 s each: the 18 outputs would take 5.4 s. The chunk looks for the cancel
    # (made after the first answer) about a second in, so it stops with most requests never sent; only
    # a chunk stalled for some 4 s would have sent them all. No clock is read: the counts say it stopped.
    fake_server.set_rule(lambda info: slow(0.3))
    chat_endpoint.concurrency_limit = 1
    chat_endpoint.save()
    run = run_start(prompt_set=prompt_set, endpoints=[chat_endpoint], samples_per_prompt=3, dispatch=False)
    cancelled = []

    def cancel_after_first_results(done, failed):
        if not cancelled:
            cancelled.append(run_cancel(run=run, actor=admin_user_role))

    report = run_generate_in_process(run=run, on_progress=cancel_after_first_results)
    run.refresh_from_db()
    assert run.status == GenerationRun.Status.CANCELLED
    assert run.finished_at is not None
    statuses = list(run.outputs.values_list("status", flat=True))
    assert set(statuses) == {Output.Status.DONE, Output.Status.CANCELLED}
    assert report.cancelled > 0  # the chunk saw the cancel and gave its unsent outputs up as cancelled
    assert fake_server.request_count < 18, "every request was sent: the chunk never saw the cancel"
    # The answers in flight when the chunk saw the cancel were waited for and kept.
    assert statuses.count(Output.Status.DONE) == fake_server.request_count == report.done
    with pytest.raises(AuditError, match="only a pending or running run"):
        run_cancel(run=run, actor=admin_user_role)

    # Resuming generates the rest; outputs done before are untouched; nothing is generated twice.
    done_before = dict(run.outputs.filter(status=Output.Status.DONE).values_list("pk", "finished_at"))
    fake_server.clear_faults()
    assert run_resume(run=run, actor=admin_user_role, dispatch=False) == 18 - len(done_before)
    run_generate_in_process(run=run)
    run.refresh_from_db()
    assert run.status == GenerationRun.Status.COMPLETED
    assert run.outputs.filter(status=Output.Status.DONE).count() == 18
    assert dict(run.outputs.filter(pk__in=done_before).values_list("pk", "finished_at")) == done_before
    assert set(fake_server.completed_counts.values()) == {3}  # three samples per prompt, each once


def test_retry_requeues_failed_outputs_only(prompt_set, chat_endpoint, fake_server, admin_user_role):
    fake_server.set_rule(lambda info: service_unavailable() if "Maria" in info.prompt else None)
    run = _run(prompt_set, chat_endpoint, max_attempts=2)
    run_generate_in_process(run=run)
    run.refresh_from_db()
    assert run.status == GenerationRun.Status.FAILED
    done_before = dict(run.outputs.filter(status=Output.Status.DONE).values_list("pk", "finished_at"))
    assert len(done_before) == 4
    fake_server.clear_faults()
    assert run_retry(run=run, actor=admin_user_role, dispatch=False) == 2
    run_generate_in_process(run=run)
    run.refresh_from_db()
    assert run.status == GenerationRun.Status.COMPLETED
    assert dict(run.outputs.filter(pk__in=done_before).values_list("pk", "finished_at")) == done_before
    retried = run.outputs.exclude(pk__in=done_before)
    assert set(retried.values_list("attempts", flat=True)) == {3}  # 2 failed + 1 that worked
    assert set(retried.values_list("last_error", flat=True)) == {""}
    with pytest.raises(AuditError, match="no failed outputs"):
        run_retry(run=run, actor=admin_user_role, dispatch=False)


def test_outputs_held_by_a_live_worker_are_left_alone_and_stale_claims_are_taken_over(
    prompt_set, chat_endpoint, fake_server, admin_user_role, settings
):
    run = _run(prompt_set, chat_endpoint)
    ids = list(run.outputs.order_by("pk").values_list("pk", flat=True))
    outputs_claim(run_id=run.pk, output_ids=ids[:2])  # another worker holds these two
    report = outputs_generate(run_id=run.pk, output_ids=ids)
    assert report.busy == ids[:2]
    assert report.done == 4
    with pytest.raises(AuditError, match="Nothing to resume"):
        run_resume(run=run, actor=admin_user_role, dispatch=False)
    settings.INFERENCE_CLAIM_STALE_SECONDS = 0.2  # that worker died: its claim goes stale
    time.sleep(0.3)  # at least 0.3 s: a busy machine only makes the claim older
    report = outputs_generate(run_id=run.pk, output_ids=ids)  # the chunk's message is delivered again
    assert (report.claimed, report.done, report.busy) == (2, 2, [])
    assert max(fake_server.completed_counts.values()) == 1
    assert fake_server.request_count == 6


def test_a_chunk_that_crashes_releases_its_outputs(prompt_set, chat_endpoint, fake_server):
    # The first request is answered; the next is held, so it is surely in flight (or not yet sent) when
    # the chunk crashes on that first answer, however long the crash takes to arrive.
    fake_server.set_rule(lambda info: None if info.index == 1 else held())
    chat_endpoint.concurrency_limit = 1
    chat_endpoint.save()
    run = _run(prompt_set, chat_endpoint)

    def crash(done, failed):
        raise RuntimeError("worker hit its time limit")

    with pytest.raises(RuntimeError):
        outputs_generate(
            run_id=run.pk, output_ids=list(run.outputs.values_list("pk", flat=True)), on_progress=crash
        )
    first = run.outputs.get(status=Output.Status.DONE)
    assert run.outputs.filter(status=Output.Status.PENDING, claimed_at__isnull=True).count() == 5
    fake_server.clear_faults()
    run_generate_in_process(run=run)
    assert run.outputs.filter(status=Output.Status.DONE).count() == 6
    assert run.outputs.get(pk=first.pk).finished_at == first.finished_at
    # The request held at the crash was abandoned and sent again; every prompt was answered once.
    assert sorted(fake_server.completed_counts.values()) == [1] * 6
    assert fake_server.request_count <= 6 + 1


def test_starting_through_the_task_queue_runs_every_chunk(
    prompt_set, chat_endpoint, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        run = run_start(prompt_set=prompt_set, endpoints=[chat_endpoint], samples_per_prompt=3, chunk_size=5)
    assert len(callbacks) == 4  # 18 outputs in chunks of 5
    run.refresh_from_db()
    assert run.status == GenerationRun.Status.COMPLETED
    assert run.outputs.filter(status=Output.Status.DONE).count() == 18


def test_run_start_refuses_bad_input_with_every_reason(prompt_set, db):
    import_only = factories.endpoint(name="imported", base_urls=[])
    empty = factories.prompt_set_with_prompts([], [])
    with pytest.raises(AuditError) as info:
        run_start(prompt_set=empty, endpoints=[import_only], samples_per_prompt=0, dispatch=False)
    fields = [e["field"] for e in info.value.errors]
    assert fields == ["samples_per_prompt", "endpoints", "prompt_set"]
    assert "no base URL" in info.value.message
    assert not GenerationRun.objects.exists()
