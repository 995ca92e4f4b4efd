"""A worker killed in the middle of a chunk loses nothing and generates nothing twice.

Real Celery workers consume from Redis and write to PostgreSQL; the fake server holds some requests
(never answered) so the kill lands while they are in flight, and counts what it answered.
"""

import os
import signal
import time
from pathlib import Path

import pytest

from inference.models import GenerationRun, Output
from inference.services.runs import run_resume, run_start
from tests import factories
from tests.conftest import WORKER_START_TIMEOUT, _database_url_for_test_db, _WorkerHandle
from tests.support.celery_worker import worker_start
from tests.support.fake_openai import answer_for, held, render_messages

pytestmark = pytest.mark.celery_worker

HELD = "Jake"  # the fake server holds the requests of prompts with this name (never answered)


def _start_worker(
    first: _WorkerHandle, log_path: Path, *, pool: str = "solo", extra_env=None
) -> _WorkerHandle:
    """Another worker on the same queue as the fixture's, optionally with a prefork pool."""
    env = {
        **os.environ,
        "DATABASE_URL": _database_url_for_test_db(),
        "CELERY_BROKER_URL": os.environ.get("CELERY_TEST_BROKER_URL", "redis://127.0.0.1:6379/15"),
        **(extra_env or {}),
    }
    process = worker_start(first.queue, log_path, env, pool=pool)
    handle = _WorkerHandle(process, log_path, first.queue)
    handle.wait_for(
        lambda: b"ready." in log_path.read_bytes(), timeout=WORKER_START_TIMEOUT, what="second worker ready"
    )
    return handle


def _kill(handle: _WorkerHandle) -> None:
    os.killpg(handle.process.pid, signal.SIGKILL)
    handle.process.wait(timeout=60)  # SIGKILL cannot be ignored: a safety net, not an expected time


def _setup(fake_server, prompt_set):
    fake_server.set_rule(lambda info: held() if HELD in info.prompt else None)
    endpoint = factories.endpoint(
        name="fake", base_urls=[fake_server.base_url], served="fake-model", concurrency_limit=8, seed=7
    )
    return run_start(prompt_set=prompt_set, endpoints=[endpoint], samples_per_prompt=1, chunk_size=6)


def _assert_each_generated_once(run, fake_server, done_before):
    outputs = list(run.outputs.select_related("prompt"))
    assert {o.status for o in outputs} == {Output.Status.DONE}
    for output in outputs:
        assert output.text == answer_for(render_messages(output.request["messages"]))
    assert dict(run.outputs.filter(pk__in=done_before).values_list("pk", "finished_at")) == done_before
    assert sorted(fake_server.completed_counts.values()) == [1] * 6


def _wait_for_the_held_requests(worker, run, fake_server):
    worker.wait_for(
        lambda: run.outputs.filter(status=Output.Status.DONE).count() == 4 and fake_server.request_count == 6,
        timeout=60,
        what="4 outputs done and 2 held by the server",
    )
    assert run.outputs.filter(status=Output.Status.RUNNING).count() == 2


def test_killed_worker_then_resume_on_a_new_worker(  # noqa: PLR0917 (pytest fixtures)
    celery_worker_process, fake_server, prompt_set, admin_user_role, settings, tmp_path
):
    run = _setup(fake_server, prompt_set)
    _wait_for_the_held_requests(celery_worker_process, run, fake_server)
    done_before = dict(run.outputs.filter(status=Output.Status.DONE).values_list("pk", "finished_at"))
    _kill(celery_worker_process)

    fake_server.clear_faults()
    second = _start_worker(celery_worker_process, tmp_path / "second.log")
    try:
        settings.INFERENCE_CLAIM_STALE_SECONDS = 1  # the dead worker's claims go stale after 1 s
        time.sleep(1.2)  # at least 1.2 s since the kill: a busy machine only makes the claims older
        assert run_resume(run=run, actor=admin_user_role) == 2
        second.wait_for(
            lambda: run.outputs.filter(status=Output.Status.DONE).count() == 6,
            timeout=60,
            what="resumed outputs",
        )
        second.wait_for(
            lambda: GenerationRun.objects.get(pk=run.pk).status == GenerationRun.Status.COMPLETED,
            timeout=60,
            what="run completed",
        )
    finally:
        second.stop()
    _assert_each_generated_once(run, fake_server, done_before)


def test_killed_pool_process_the_chunk_is_delivered_again_and_finished(
    celery_worker_process, fake_server, prompt_set, tmp_path
):
    """Prefork: the pool process dies, reject_on_worker_lost requeues the message, and the redelivered
    chunk waits for the dead claims to go stale, then takes them over; nobody resumes anything."""
    _kill(celery_worker_process)  # replaced by a prefork worker whose claims go stale after 2 s
    worker = _start_worker(
        celery_worker_process,
        tmp_path / "prefork.log",
        pool="prefork",
        extra_env={"INFERENCE_CLAIM_STALE_SECONDS": "2"},
    )
    try:
        run = _setup(fake_server, prompt_set)
        _wait_for_the_held_requests(worker, run, fake_server)
        done_before = dict(run.outputs.filter(status=Output.Status.DONE).values_list("pk", "finished_at"))
        children = Path(f"/proc/{worker.process.pid}/task/{worker.process.pid}/children").read_text().split()
        assert len(children) == 1
        fake_server.clear_faults()
        os.kill(int(children[0]), signal.SIGKILL)
        worker.wait_for(
            lambda: run.outputs.filter(status=Output.Status.DONE).count() == 6,
            timeout=60,
            what="redelivered chunk",
        )
        # The redelivered chunk took the dead claims over (after waiting for them to go stale, when it
        # came back before they had: "2 held elsewhere", then a retry); it logs once it has finished.
        worker.wait_for(
            lambda: b"2 claimed, 2 done" in worker.log_path.read_bytes(),
            timeout=60,
            what="the chunk's log line",
        )
        assert b"WorkerLostError" in worker.log_path.read_bytes()
    finally:
        worker.stop()
    _assert_each_generated_once(run, fake_server, done_before)
