"""Judge score runs through a real Celery worker: each output judged exactly once, through a killed
worker, transient errors and a retry.

Real Celery workers consume from Redis and write to PostgreSQL; the fake server answers the judge's
structured-outputs requests, holds some of them (never answered) so a kill lands while they are in
flight, fails others, and counts what it answered (`completed_counts`, keyed by the whole request).
The last test is in-process: a judge that answers outside the categories.
"""

import os
import signal
import time
from pathlib import Path

import pytest

from inference.models import Score, Scorer, ScoreRun
from inference.score_selectors import score_run_categories, score_run_unparseable_count
from inference.services.runs import run_resume, run_retry
from inference.services.scoring import score_run_in_process, score_run_start, scorer_create
from tests import factories
from tests.conftest import WORKER_START_TIMEOUT, _database_url_for_test_db, _WorkerHandle
from tests.support.celery_worker import worker_start
from tests.support.fake_openai import REFUSAL_TEXT, choice_distribution, held, service_unavailable

HELD = "Jake"  # the fake server holds the judge requests of Jake's outputs (never answered)
FLAKY = "Maria"  # ... answers 503 to the first two requests of Maria's outputs
ALWAYS_FAILS = "(the judge always fails on this one)"  # ... and 503 to every request of this output


@pytest.fixture(autouse=True)
def _fast_worker_backoff(monkeypatch):
    """Workers started by these tests back off a few milliseconds between attempts (read from the
    environment at start; autouse, so set before the worker fixture starts its process)."""
    monkeypatch.setenv("INFERENCE_RETRY_BASE_MS", "5")
    monkeypatch.setenv("INFERENCE_RETRY_MAX_MS", "20")


@pytest.fixture
def outputs(db, prompt_set):
    """A run of 12 done outputs (6 prompts x 2 samples), each with its own text: Mohammed's refuse."""
    run = factories.run_with_outputs(prompt_set, [factories.endpoint("llama")], samples=2)
    for output in run.outputs.select_related("prompt__member"):
        is_refusal = output.prompt.member.value == "Mohammed"
        answer = REFUSAL_TEXT if is_refusal else "to visit her family."
        output.text = f"{answer} (sample {output.sample_index})"
        output.save(update_fields=["text"])
    return run


def _judge(default_scheme, fake_server) -> Scorer:
    endpoint = factories.endpoint(
        name="fake-judge",
        base_urls=[fake_server.base_url],
        served="fake-model",
        concurrency_limit=16,
        request_timeout=10,
    )
    return scorer_create(name="judge", kind=Scorer.Kind.JUDGE, scheme=default_scheme, endpoint=endpoint)


def _start_worker(first: _WorkerHandle, log_path: Path) -> _WorkerHandle:
    """Another worker on the same queue as the fixture's."""
    env = {
        **os.environ,
        "DATABASE_URL": _database_url_for_test_db(),
        "CELERY_BROKER_URL": os.environ.get("CELERY_TEST_BROKER_URL", "redis://127.0.0.1:6379/15"),
    }
    handle = _WorkerHandle(worker_start(first.queue, log_path, env), log_path, first.queue)
    handle.wait_for(
        lambda: b"ready." in log_path.read_bytes(), timeout=WORKER_START_TIMEOUT, what="second worker ready"
    )
    return handle


def _kill(handle: _WorkerHandle) -> None:
    os.killpg(handle.process.pid, signal.SIGKILL)
    handle.process.wait(timeout=60)  # SIGKILL cannot be ignored: a safety net, not an expected time


def _status(score_run: ScoreRun) -> str:
    return ScoreRun.objects.values_list("status", flat=True).get(pk=score_run.pk)


def _results(score_run: ScoreRun, **filters) -> dict[int, tuple]:
    """What each score holds: status, category, probabilities, raw, attempts, error, finish time."""
    fields = ("status", "category_id", "probabilities", "raw", "attempts", "last_error", "finished_at")
    return {pk: rest for pk, *rest in score_run.scores.filter(**filters).values_list("pk", *fields)}


def _assert_judged_like_the_fake(score_run: ScoreRun, keys: list[str]) -> None:
    """Refusals judged refusals, every answer a key with the fake's probabilities, the raw text kept."""
    for score in score_run.scores.select_related("category", "output"):
        assert score.status == Score.Status.DONE
        assert not score.is_unparseable
        if score.output.text.startswith(REFUSAL_TEXT):
            assert score.category.key == "refusal-to-answer"
        assert score.probabilities == pytest.approx(choice_distribution(score.category.key, keys))
        assert score.raw["text"] == score.category.key
        assert score.raw["model"] == "fake-model"


@pytest.mark.celery_worker
def test_a_judge_run_on_a_worker_judges_each_output_once(
    celery_worker_process, fake_server, outputs, default_scheme
):
    score_run = score_run_start(
        scorer=_judge(default_scheme, fake_server), generation_run=outputs, chunk_size=5
    )
    celery_worker_process.wait_for(
        lambda: _status(score_run) == ScoreRun.Status.COMPLETED, timeout=60, what="the score run to complete"
    )
    keys = list(default_scheme.categories.order_by("order").values_list("key", flat=True))
    _assert_judged_like_the_fake(score_run, keys)
    assert set(score_run.scores.values_list("attempts", flat=True)) == {1}
    assert fake_server.request_count == 12
    assert sorted(fake_server.completed_counts.values()) == [1] * 12
    assert {r.endpoint for r in fake_server.records} == {"chat"}
    log = celery_worker_process.log_tail(50000)
    assert log.count("Task inference.score_chunk[") >= 3  # 12 scores in chunks of 5
    assert log.count("5 claimed, 5 done, 0 failed") == 2
    assert log.count("2 claimed, 2 done, 0 failed") == 1


@pytest.mark.celery_worker
def test_killed_worker_then_resume_on_a_new_worker_judges_nothing_twice(  # noqa: PLR0917 (pytest fixtures)
    celery_worker_process, fake_server, outputs, default_scheme, admin_user_role, settings, tmp_path
):
    """Two chunks of 6; the first holds Jake's two requests, so the solo worker never reaches the second.
    SIGKILL of the worker's process group; resume re-queues the dead claims and the second chunk (whose
    original message may still be in Redis: delivered too, it finds its scores done and does nothing)."""
    fake_server.set_rule(lambda info: held() if HELD in info.prompt else None)
    score_run = score_run_start(
        scorer=_judge(default_scheme, fake_server), generation_run=outputs, chunk_size=6
    )
    celery_worker_process.wait_for(
        lambda: (
            score_run.scores.filter(status=Score.Status.DONE).count() == 4 and fake_server.request_count == 6
        ),
        timeout=60,
        what="4 scores done and 2 held by the server",
    )
    assert score_run.scores.filter(status=Score.Status.RUNNING).count() == 2
    assert score_run.scores.filter(status=Score.Status.PENDING).count() == 6
    done_before = _results(score_run, status=Score.Status.DONE)
    _kill(celery_worker_process)

    fake_server.clear_faults()  # never release(): the held requests would be answered to a dead worker
    settings.INFERENCE_CLAIM_STALE_SECONDS = 1  # the dead worker's claims go stale after 1 s
    time.sleep(1.2)  # at least 1.2 s since the kill: a busy machine only makes the claims older
    assert run_resume(run=score_run, actor=admin_user_role) == 2 + 6
    second = _start_worker(celery_worker_process, tmp_path / "second.log")
    try:
        second.wait_for(
            lambda: _status(score_run) == ScoreRun.Status.COMPLETED,
            timeout=60,
            what="the score run to complete",
        )
    finally:
        second.stop()
    keys = list(default_scheme.categories.order_by("order").values_list("key", flat=True))
    _assert_judged_like_the_fake(score_run, keys)
    assert _results(score_run, pk__in=done_before) == done_before
    assert sorted(fake_server.completed_counts.values()) == [1] * 12
    # Jake's two held requests were sent twice (held, then after the resume), every other once.
    assert sorted(fake_server.prompt_counts.values()) == [1] * 10 + [2] * 2
    assert sorted(score_run.scores.values_list("attempts", flat=True)) == [1] * 12


@pytest.mark.celery_worker
def test_transient_errors_are_retried_and_a_failure_is_retried_alone(
    celery_worker_process, fake_server, outputs, default_scheme, admin_user_role
):
    always = outputs.outputs.filter(prompt__member__value="Jake").order_by("pk").first()
    always.text += f" {ALWAYS_FAILS}"
    always.save(update_fields=["text"])

    def rule(info):
        if ALWAYS_FAILS in info.prompt or (FLAKY in info.prompt and info.attempt <= 2):
            return service_unavailable()
        return None

    fake_server.set_rule(rule)
    score_run = score_run_start(
        scorer=_judge(default_scheme, fake_server), generation_run=outputs, chunk_size=6, max_attempts=3
    )
    celery_worker_process.wait_for(
        lambda: _status(score_run) == ScoreRun.Status.FAILED, timeout=60, what="the score run to end failed"
    )
    failed = score_run.scores.get(output=always)
    assert failed.status == Score.Status.FAILED
    assert failed.attempts == 3
    assert failed.last_error.startswith(f"HTTP 503 from {fake_server.base_url}/chat/completions: ")
    assert failed.last_error.endswith("(after 3 attempts)")
    assert (failed.category, failed.probabilities, failed.is_unparseable) == (None, {}, False)
    flaky = score_run.scores.filter(output__prompt__member__value=FLAKY)
    assert set(flaky.values_list("status", "attempts", "last_error")) == {(Score.Status.DONE, 3, "")}
    others = score_run.scores.exclude(pk=failed.pk).exclude(output__prompt__member__value=FLAKY)
    assert set(others.values_list("status", "attempts")) == {(Score.Status.DONE, 1)}
    assert sorted(fake_server.completed_counts.values()) == [1] * 11  # the failing one was never answered
    assert fake_server.request_count == 3 + 4 * 3 + 7

    done_before = _results(score_run, status=Score.Status.DONE)
    fake_server.clear_faults()
    sent_before = fake_server.request_count
    assert run_retry(run=score_run, actor=admin_user_role) == 1
    celery_worker_process.wait_for(
        lambda: _status(score_run) == ScoreRun.Status.COMPLETED,
        timeout=60,
        what="the retried run to complete",
    )
    failed.refresh_from_db()
    assert (failed.status, failed.attempts, failed.last_error) == (Score.Status.DONE, 4, "")
    assert failed.category is not None
    assert _results(score_run, pk__in=done_before) == done_before
    assert [ALWAYS_FAILS in r.prompt for r in fake_server.records[sent_before:]] == [True]
    assert sorted(fake_server.completed_counts.values()) == [1] * 12
    assert "1 claimed, 1 done, 0 failed" in celery_worker_process.log_tail(50000)


def test_a_judge_answering_nonsense_is_unparseable_and_counted(fake_server, outputs, default_scheme):
    """In-process: every answer is outside the categories; each score is DONE, names no category and
    keeps the text and the reason; the run completes and counts them."""
    fake_server.judge_answer = "nonsense"
    score_run = score_run_start(
        scorer=_judge(default_scheme, fake_server), generation_run=outputs, dispatch=False
    )
    report = score_run_in_process(run=score_run)
    assert (report.done, report.failed) == (12, 0)
    assert _status(score_run) == ScoreRun.Status.COMPLETED
    for score in score_run.scores.all():
        assert (score.status, score.is_unparseable, score.category_id) == (Score.Status.DONE, True, None)
        assert score.probabilities == {}
        assert score.raw["text"] == "nonsense"
        assert score.raw["unparseable"].startswith("The answer 'nonsense' is not one of: answer, ")
    assert score_run_unparseable_count(run_id=score_run.pk) == 12
    assert score_run_categories(run_id=score_run.pk) == [
        {"key": None, "name": "Unparseable (no category)", "n": 12, "flagged": 0}
    ]
