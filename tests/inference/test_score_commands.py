"""The command-line side of scoring: scorer_add, score (in-process, queued, continued)."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from inference.models import Score, Scorer, ScoreRun
from inference.services.runs import run_cancel
from tests import factories

REFUSAL = "I'm sorry, but I cannot complete that sentence."


def _call(*args):
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def run(prompt_set):
    """A run of 6 outputs of one model: Mohammed's are refusals, the others answers."""
    run = factories.run_with_outputs(prompt_set, [factories.endpoint("llama")], text="visit family.")
    run.outputs.filter(prompt__member__value="Mohammed").update(text=REFUSAL)
    return run


@pytest.fixture
def xstest(default_scheme):
    """The XSTest string match on the study's scheme, registered by the command."""
    _call(
        "scorer_add", "xstest", "--kind", "string_match", "--scheme", default_scheme.key, "--preset", "xstest"
    )
    return Scorer.objects.get(name="xstest")


def test_scorer_add_preset_fills_the_schemes_categories_and_update_makes_a_version(xstest):
    assert xstest.kind == Scorer.Kind.STRING_MATCH
    assert xstest.config["preset"] == "xstest"
    assert (xstest.config["refusal_category"], xstest.config["otherwise_category"]) == (
        "refusal-to-answer",
        "answer",
    )
    out, _ = _call("scorer_add", "xstest", "--update", "--refusal-category", "harmful-refusal")
    updated = Scorer.objects.get(name="xstest")
    assert out.strip() == f"Updated scorer xstest (String match, id {xstest.pk}, version {updated.version})."
    assert updated.version != xstest.version
    assert updated.config["preset"] == "xstest"
    assert updated.config["refusal_category"] == "harmful-refusal"
    _call("scorer_add", "xstest", "--update", "--description", "XSTest's rule")
    assert Scorer.objects.get(name="xstest").version == updated.version


def test_scorer_add_config_file_and_imported_kind(default_scheme, tmp_path):
    config = tmp_path / "rules.json"
    config.write_text(json.dumps({"preset": None, "rules": [{"phrase": "I cannot", "match": "contains"}]}))
    _call(
        "scorer_add", "cannot", "--kind", "string_match", "--scheme", "qos-six", "--config-file", str(config)
    )
    scorer = Scorer.objects.get(name="cannot")
    assert scorer.config["rules"][0]["phrase"] == "I cannot"
    assert scorer.config["refusal_category"] == "refusal-to-answer"
    out, _ = _call("scorer_add", "crowd", "--kind", "imported", "--description", "MTurk workers")
    crowd = Scorer.objects.get(name="crowd")
    assert (crowd.kind, crowd.scheme, crowd.config, crowd.description) == (
        "imported",
        None,
        {},
        "MTurk workers",
    )
    assert out.startswith("Registered scorer crowd (Imported scores, id ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kind", "imported", "--scheme", "nope"], "No label scheme 'nope' (known: qos-six)."),
        (
            ["--kind", "judge", "--scheme", "qos-six", "--endpoint", "nobody"],
            "No model endpoint named 'nobody'",
        ),
        (["--scheme", "qos-six"], "Give --kind for a new scorer."),
        (["--kind", "string_match", "--scheme", "qos-six", "--config", "{"], "The configuration is not JSON"),
        (["--kind", "string_match", "--scheme", "qos-six", "--config", "[]"], "must be a JSON object"),
        (
            ["--kind", "imported", "--preset", "xstest"],
            "--preset, --refusal-category and --otherwise-category",
        ),
        (
            [
                "--kind",
                "string_match",
                "--scheme",
                "qos-six",
                "--preset",
                "xstest",
                "--refusal-category",
                "no",
            ],
            "  config.refusal_category: Choose one of answer, partial-answer",
        ),
        (
            ["--kind", "judge", "--scheme", "qos-six"],
            "  endpoint: A judge scorer calls a model: choose an endpoint.",
        ),
        (
            ["--kind", "string_match", "--preset", "xstest"],
            "  scheme: A string_match scorer assigns categories",
        ),
    ],
)
def test_scorer_add_errors_name_the_field(default_scheme, args, message):
    with pytest.raises(CommandError) as info:
        _call("scorer_add", "s1", *args)
    assert message in str(info.value)
    assert not Scorer.objects.exists()


def test_scorer_add_refuses_to_overwrite_or_change_what_a_scorer_is(xstest):
    with pytest.raises(CommandError, match="A scorer named 'xstest' exists; --update changes it"):
        _call("scorer_add", "xstest", "--kind", "string_match", "--scheme", "qos-six", "--preset", "xstest")
    with pytest.raises(CommandError, match="The --kind of scorer 'xstest' cannot change"):
        _call("scorer_add", "xstest", "--update", "--kind", "imported")


def test_score_a_run_in_process_with_a_progress_bar_then_a_campaign(run, xstest, default_scheme):
    out, err = _call("score", "--run", str(run.pk), "--scorer", "xstest")
    score_run = ScoreRun.objects.get()
    assert out.splitlines() == [
        f"Score run {score_run.pk} ({score_run.name}): 6 scores.",
        f"Score run {score_run.pk}: Completed: 6 done, 0 failed, 0 to do, 0 cancelled.",
    ]
    assert "6/6" in err  # the terminal progress bar (tqdm) reached the end
    keys = dict(score_run.scores.values_list("output__text", "category__key"))
    assert keys == {REFUSAL: "refusal-to-answer", "visit family.": "answer"}

    # A campaign over the same outputs: this version scored them already.
    campaign = factories.campaign_with_items(default_scheme, run.outputs.order_by("pk"))
    out, _ = _call("score", "--campaign", str(campaign.pk), "--scorer", "xstest", "--no-progress")
    again = ScoreRun.objects.exclude(pk=score_run.pk).get()
    assert out.splitlines()[0] == (
        f"Score run {again.pk} ({again.name}): 0 scores; 6 outputs were scored by this version before."
    )
    assert again.status == ScoreRun.Status.COMPLETED


def test_score_run_continues_a_cancelled_run(run, xstest):
    from inference.services.scoring import score_run_start

    score_run = score_run_start(scorer=xstest, generation_run=run, dispatch=False)
    run_cancel(run=score_run, actor=None)
    out, _ = _call("score", "--score-run", str(score_run.pk), "--no-progress")
    assert (
        out.splitlines()[-1]
        == f"Score run {score_run.pk}: Completed: 6 done, 0 failed, 0 to do, 0 cancelled."
    )
    assert set(score_run.scores.values_list("status", flat=True)) == {Score.Status.DONE}
    out, _ = _call("score", "--score-run", str(score_run.pk), "--no-progress")  # nothing left: says so
    assert "Completed: 6 done" in out


def test_with_a_broker_score_queues_one_task_per_chunk(
    run, xstest, settings, django_capture_on_commit_callbacks
):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        out, _ = _call("score", "--run", str(run.pk), "--scorer", "xstest", "--chunk-size", "4", "--no-wait")
    score_run = ScoreRun.objects.get()
    assert len(callbacks) == 2  # 6 scores in chunks of 4
    assert (score_run.chunk_size, score_run.status) == (4, ScoreRun.Status.PENDING)
    assert (
        out.splitlines()[-1] == f"Score run {score_run.pk}: Pending: 0 done, 0 failed, 6 to do, 0 cancelled."
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "Give --scorer and --run or --campaign (or --score-run N to continue one)."),
        (["--run", "1"], "Give --scorer and --run or --campaign"),
        (["--run", "999999", "--scorer", "xstest"], "No run 999999."),
        (["--campaign", "999999", "--scorer", "xstest"], "No campaign 999999."),
        (["--score-run", "999999"], "No score run 999999."),
        (["--run", "RUN", "--scorer", "nobody"], "No scorer named 'nobody' (scorer_add registers one)."),
        (["--run", "RUN", "--scorer", "crowd"], "'crowd' is an imported scorer: use import_scores."),
        (
            ["--run", "RUN", "--scorer", "xstest", "--chunk-size", "60000"],
            "  chunk_size: The chunk size must be",
        ),
        (
            ["--run", "RUN", "--scorer", "xstest", "--max-attempts", "0"],
            "  max_attempts: Attempts per output",
        ),
    ],
)
def test_score_errors_are_clear(run, xstest, args, message):
    Scorer.objects.create(name="crowd", kind=Scorer.Kind.IMPORTED, version="v")
    args = [str(run.pk) if a == "RUN" else a for a in args]
    with pytest.raises(CommandError) as info:
        _call("score", *args)
    assert message in str(info.value)
    assert not ScoreRun.objects.exists()


@pytest.mark.celery_worker
def test_score_follows_a_real_worker_to_the_end(celery_worker_process, settings, default_scheme, prompt_set):
    """With a broker, `score` queues the chunks and its progress bar follows the worker's writes."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    run = factories.run_with_outputs(prompt_set, [factories.endpoint("llama")], samples=2, text=REFUSAL)
    _call(
        "scorer_add", "xstest", "--kind", "string_match", "--scheme", default_scheme.key, "--preset", "xstest"
    )
    out, err = _call("score", "--run", str(run.pk), "--scorer", "xstest", "--chunk-size", "5")
    score_run = ScoreRun.objects.get()
    assert (
        out.splitlines()[-1]
        == f"Score run {score_run.pk}: Completed: 12 done, 0 failed, 0 to do, 0 cancelled."
    )
    assert "12/12" in err
    assert set(score_run.scores.values_list("category__key", flat=True)) == {"refusal-to-answer"}
    assert "Task inference.score_chunk[" in celery_worker_process.log_tail(20000)
