"""Runs finish with nobody acting: the sweeper (Celery beat + inference.sweep_runs) on real workers.

- The whole worker is killed mid-run (SIGKILL to its process group, so nothing is acknowledged or
  released) and another worker starts: no resume call, the run completes, each output generated once.
- Redis is restarted mid-run (a private redis-server without persistence, killed and started again):
  the queued chunk messages are gone; the sweeper queues them again and the run completes, each output
  generated once.
Claims go stale after 2 s and beat sweeps every second here (the defaults are 300 s and 60 s).
"""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from inference.models import GenerationRun, Output
from inference.services.runs import run_start
from tests import factories
from tests.conftest import (
    WORKER_START_TIMEOUT,
    _database_url_for_test_db,
    _requires_postgres,
    _reset_broker_connections,
    _WorkerHandle,
)
from tests.support.celery_worker import beat_start, worker_start
from tests.support.fake_openai import answer_for, held, render_messages, slow

pytestmark = pytest.mark.celery_worker

FAST = {"INFERENCE_CLAIM_STALE_SECONDS": "2", "INFERENCE_SWEEP_SECONDS": "1"}
HELD = "Jake"


def _start(queue: str, tmp_path: Path, env: dict[str, str], name: str) -> _WorkerHandle:
    """A worker and a beat with `env`; the handle stops both."""
    log = tmp_path / f"{name}.log"
    handle = _WorkerHandle(worker_start(queue, log, env), log, queue, env=env)
    handle.beat = beat_start(tmp_path / f"{name}-beat.log", env)
    handle.wait_for(lambda: b"ready." in log.read_bytes(), timeout=WORKER_START_TIMEOUT, what=f"{name} ready")
    return handle


def _kill(handle: _WorkerHandle) -> None:
    os.killpg(handle.process.pid, signal.SIGKILL)
    handle.process.wait(timeout=60)


def _assert_each_generated_once(run, fake_server, done_before):
    outputs = list(run.outputs.all())
    assert {o.status for o in outputs} == {Output.Status.DONE}
    for output in outputs:
        assert output.text == answer_for(render_messages(output.request["messages"]))
    assert dict(run.outputs.filter(pk__in=done_before).values_list("pk", "finished_at")) == done_before
    assert sorted(fake_server.completed_counts.values()) == [1] * len(outputs)


def _wait_completed(handle: _WorkerHandle, run) -> None:
    handle.wait_for(
        lambda: GenerationRun.objects.get(pk=run.pk).status == GenerationRun.Status.COMPLETED,
        timeout=120,
        what="the run completed without a resume",
    )


def test_whole_worker_killed_the_sweeper_and_a_new_worker_finish_the_run(
    celery_worker_process, fake_server, prompt_set, tmp_path
):
    fake_server.set_rule(lambda info: held() if HELD in info.prompt else None)
    endpoint = factories.endpoint(
        name="fake", base_urls=[fake_server.base_url], served="fake-model", concurrency_limit=8, seed=7
    )
    run = run_start(prompt_set=prompt_set, endpoints=[endpoint], samples_per_prompt=1, chunk_size=6)
    celery_worker_process.wait_for(
        lambda: run.outputs.filter(status=Output.Status.DONE).count() == 4 and fake_server.request_count == 6,
        timeout=60,
        what="4 outputs done and 2 held by the server",
    )
    done_before = dict(run.outputs.filter(status=Output.Status.DONE).values_list("pk", "finished_at"))
    celery_worker_process.beat_stop()
    _kill(celery_worker_process)  # its message stays unacknowledged until the visibility timeout (35 min)
    assert run.outputs.filter(status=Output.Status.RUNNING).count() == 2
    fake_server.clear_faults()
    second = _start(celery_worker_process.queue, tmp_path, {**celery_worker_process.env, **FAST}, "second")
    try:
        _wait_completed(second, run)
    finally:
        second.stop()
        second.beat_stop()
    _assert_each_generated_once(run, fake_server, done_before)
    assert GenerationRun.objects.get(pk=run.pk).swept_at is not None
    assert b"idle; 1 chunk task(s) queued again" in second.log_path.read_bytes()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _redis(port: int, log: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    pytest.fail(f"redis-server on port {port} did not start: {log.read_text()[-2000:]}")


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server of this test's own (it is restarted mid-test), without persistence."""
    if subprocess.run(["which", "redis-server"], capture_output=True).returncode:
        pytest.fail("redis-server is not installed (the README's test command installs it)")
    port = _free_port()
    state = {"port": port, "process": _redis(port, tmp_path / "redis.log"), "log": tmp_path / "redis.log"}
    yield state
    state["process"].kill()
    state["process"].wait(timeout=10)


def test_redis_restarted_mid_run_the_sweeper_queues_the_lost_chunks(
    transactional_db, private_redis, fake_server, prompt_set, tmp_path
):
    _requires_postgres()
    from auditproject.celery import app

    broker = f"redis://127.0.0.1:{private_redis['port']}/0"
    queue = f"test-redis-{private_redis['port']}"
    env = {
        **os.environ, "DATABASE_URL": _database_url_for_test_db(), "CELERY_BROKER_URL": broker,
        "CELERY_TASK_DEFAULT_QUEUE": queue, **FAST,
    }  # fmt: skip
    old = {key: app.conf.get(key) for key in ("broker_url", "task_always_eager", "task_default_queue")}
    app.conf.update(broker_url=broker, task_always_eager=False, task_default_queue=queue)
    _reset_broker_connections(app)
    answered = []

    def rule(info):  # the first chunk's two requests take 4 s: Redis restarts while they are in flight
        answered.append(info.prompt)
        return slow(4.0) if len(answered) <= 2 else None

    fake_server.set_rule(rule)
    endpoint = factories.endpoint(
        name="fake", base_urls=[fake_server.base_url], served="fake-model", concurrency_limit=8, seed=7
    )
    worker = _start(queue, tmp_path, env, "worker")
    try:
        run = run_start(prompt_set=prompt_set, endpoints=[endpoint], samples_per_prompt=1, chunk_size=2)
        worker.wait_for(lambda: fake_server.request_count >= 2, timeout=60, what="the first chunk in flight")
        private_redis["process"].kill()  # SIGKILL: no save (there is none), every queued message gone
        private_redis["process"].wait(timeout=10)
        private_redis["process"] = _redis(private_redis["port"], private_redis["log"])
        assert run.outputs.filter(status=Output.Status.PENDING).count() == 4  # the lost chunks' outputs
        _wait_completed(worker, run)
    finally:
        app.conf.update(old)
        _reset_broker_connections(app)
        worker.stop()
        worker.beat_stop()
    _assert_each_generated_once(run, fake_server, {})
    assert GenerationRun.objects.get(pk=run.pk).swept_at is not None
