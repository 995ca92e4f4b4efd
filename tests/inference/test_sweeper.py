"""The sweeper's choices, without a worker: which runs are idle, which rows it queues again, and that it
leaves working runs, finished runs, failed and cancelled rows alone (inference/services/sweeper.py)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from inference.models import GenerationRun, Output, Score, Scorer, ScoreRun
from inference.services.runs import run_start
from inference.services.scoring import score_run_start, scorer_create
from inference.services.sweeper import runs_sweep
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    """The chunk tasks the sweeper queues: (task, run id, row ids), captured instead of sent."""
    calls = []
    from inference import tasks

    monkeypatch.setattr(tasks.generate_chunk, "delay", lambda run, ids: calls.append(("generate", run, ids)))
    monkeypatch.setattr(tasks.score_chunk, "delay", lambda run, ids: calls.append(("score", run, ids)))
    return calls


def _run(prompt_set, *, chunk_size=2, name="fake"):
    endpoint = factories.endpoint(name=name, base_urls=["http://127.0.0.1:1/v1"], served="fake-model")
    return run_start(
        prompt_set=prompt_set,
        endpoints=[endpoint],
        samples_per_prompt=1,
        chunk_size=chunk_size,
        dispatch=False,
    )


def _age(run, seconds=600):
    """Make the run and its rows look `seconds` old (created, started, claimed, finished)."""
    past = timezone.now() - timedelta(seconds=seconds)
    type(run).objects.filter(pk=run.pk).update(created_at=past, started_at=past)
    rows = run.scores if isinstance(run, ScoreRun) else run.outputs
    rows.exclude(claimed_at=None).update(claimed_at=past)
    rows.exclude(finished_at=None).update(finished_at=past)


def test_an_idle_run_gets_its_pending_and_stale_rows_queued_again(
    prompt_set, sent, django_capture_on_commit_callbacks
):
    run = _run(prompt_set)
    ids = list(run.outputs.order_by("pk").values_list("pk", flat=True))
    now = timezone.now()
    Output.objects.filter(pk=ids[0]).update(status="done", finished_at=now, claimed_at=now)
    Output.objects.filter(pk=ids[1]).update(status="running", claimed_at=now)  # its worker will die
    Output.objects.filter(pk=ids[2]).update(status="failed", finished_at=now)
    Output.objects.filter(pk=ids[3]).update(status="cancelled")
    GenerationRun.objects.filter(pk=run.pk).update(status="running")
    _age(run)
    with django_capture_on_commit_callbacks(execute=True):
        report = runs_sweep()
    assert report.requeued["generation"] == {run.pk: 2}  # chunks of 2: the stale one and two pending
    assert sent == [("generate", run.pk, [ids[1], ids[4]]), ("generate", run.pk, [ids[5]])]
    run.refresh_from_db()
    assert run.swept_at is not None
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):  # just swept: that counts as activity
        assert runs_sweep().requeued["generation"] == {}
    assert sent == []


def test_a_working_or_young_run_is_not_swept(prompt_set, sent, django_capture_on_commit_callbacks, settings):
    run = _run(prompt_set)
    with django_capture_on_commit_callbacks(execute=True):
        assert runs_sweep().requeued["generation"] == {}  # created just now: its messages may be queued
    _age(run)
    first = run.outputs.order_by("pk").first()
    Output.objects.filter(pk=first.pk).update(status="running", claimed_at=timezone.now())  # a heartbeat
    with django_capture_on_commit_callbacks(execute=True):
        assert runs_sweep().requeued["generation"] == {}
    settings.INFERENCE_CLAIM_STALE_SECONDS = 0  # now every claim is stale and the run idle
    with django_capture_on_commit_callbacks(execute=True):
        assert runs_sweep().requeued["generation"] == {run.pk: 3}
    assert sum(len(ids) for *_, ids in sent) == 6


def test_finished_and_cancelled_runs_are_left_alone(prompt_set, sent, django_capture_on_commit_callbacks):
    done, cancelled = _run(prompt_set), _run(prompt_set, name="other")
    GenerationRun.objects.filter(pk=done.pk).update(status="completed")
    GenerationRun.objects.filter(pk=cancelled.pk).update(status="cancelled")
    _age(done)
    _age(cancelled)
    with django_capture_on_commit_callbacks(execute=True):
        report = runs_sweep()
    assert report.checked == 0
    assert sent == []


def test_score_runs_are_swept_the_same_way(
    prompt_set, default_scheme, sent, django_capture_on_commit_callbacks
):
    generation = _run(prompt_set)
    generation.outputs.update(status="done", text="I cannot help with that.", finished_at=timezone.now())
    GenerationRun.objects.filter(pk=generation.pk).update(status="completed")
    scorer = scorer_create(
        name="xstest", kind=Scorer.Kind.STRING_MATCH, scheme=default_scheme,
        config={"preset": "xstest", "refusal_category": "refusal-to-answer", "otherwise_category": "answer"},
    )  # fmt: skip
    score_run = score_run_start(scorer=scorer, generation_run=generation, chunk_size=4, dispatch=False)
    _age(score_run)
    with django_capture_on_commit_callbacks(execute=True):
        report = runs_sweep()
    assert report.requeued == {"generation": {}, "score": {score_run.pk: 2}}
    ids = list(Score.objects.filter(run=score_run).order_by("pk").values_list("pk", flat=True))
    assert sent == [("score", score_run.pk, ids[:4]), ("score", score_run.pk, ids[4:])]
