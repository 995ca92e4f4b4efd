"""Scorer and score-run pages and API: who may do what, forms and their errors, live progress, actions."""

import json

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from inference.models import Score, Scorer, ScoreRun
from inference.services.scoring import score_run_in_process, score_run_start, scorer_create
from tests import factories
from tests.conftest import DEMO_PASSWORD

XSS = "<script>window.__pwned=1</script>"
REFUSAL = "I'm sorry, but I cannot complete that sentence."
XSTEST = {"preset": "xstest", "refusal_category": "refusal-to-answer", "otherwise_category": "answer"}


def _client(client, user):
    client.login(username=user.username, password=DEMO_PASSWORD)
    return client


def _api(user):
    api = APIClient()
    api.force_authenticate(user)
    return api


def _errors(response) -> set[str]:
    return {e["field"] for e in response.json()["errors"]}


@pytest.fixture
def generation_run(prompt_set):
    """Six done outputs of one model: Mohammed's are refusals, the others answers with markup in them."""
    run = factories.run_with_outputs(prompt_set, [factories.endpoint("llama")], text=XSS + " visit family.")
    run.outputs.filter(prompt__member__value="Mohammed").update(text=REFUSAL)
    return run


@pytest.fixture
def xstest(default_scheme):
    """XSTest's string match on the study's scheme."""
    return scorer_create(name="xstest", kind=Scorer.Kind.STRING_MATCH, scheme=default_scheme, config=XSTEST)


@pytest.fixture
def scored_run(xstest, generation_run):
    """A finished string-match run of the six outputs: 4 done (one unparseable), 2 failed with markup."""
    run = score_run_start(scorer=xstest, generation_run=generation_run, dispatch=False)
    score_run_in_process(run=run)
    scores = list(run.scores.order_by("pk"))
    Score.objects.filter(pk__in=[s.pk for s in scores[:2]]).update(
        status=Score.Status.FAILED, category=None, last_error="<b>judge</b> answered HTTP 503"
    )
    Score.objects.filter(pk=scores[2].pk).update(category=None, is_unparseable=True)
    ScoreRun.objects.filter(pk=run.pk).update(status=ScoreRun.Status.FAILED)
    run.refresh_from_db()
    return run


def test_roles_researchers_read_admins_write(client, researcher, annotator, admin_user_role, scored_run):
    scorer = scored_run.scorer
    pages = [
        reverse("inference:scorer_list"),
        reverse("inference:scorer_detail", args=[scorer.pk]),
        reverse("inference:score_run_list"),
        reverse("inference:score_run_detail", args=[scored_run.pk]),
        reverse("inference:score_run_progress", args=[scored_run.pk]),
    ]
    admin_pages = [
        reverse("inference:scorer_create"),
        reverse("inference:scorer_edit", args=[scorer.pk]),
        reverse("inference:score_run_create"),
    ]
    _client(client, researcher)
    for url in pages:
        assert client.get(url).status_code == 200, url
    for url in admin_pages:
        assert client.get(url).status_code == 403, url
    for action in ("cancel", "resume", "retry"):
        url = reverse(f"inference:score_run_{action}", args=[scored_run.pk])
        assert client.post(url).status_code == 403
    assert "New scorer" not in client.get(pages[0]).text
    assert "Retry failed" not in client.get(pages[3]).text
    client.logout()
    _client(client, annotator)
    for url in pages + admin_pages:
        assert client.get(url).status_code == 403, url
    client.logout()
    assert client.get(pages[0]).status_code == 302  # guests go to the login page
    _client(client, admin_user_role)
    assert "New scorer" in client.get(pages[0]).text
    assert "Retry failed" in client.get(pages[3]).text
    for url in admin_pages:
        assert client.get(url).status_code == 200, url

    api = _api(researcher)
    for url in (
        "/api/scorers/",
        f"/api/scorers/{scorer.pk}/",
        "/api/score-runs/",
        f"/api/score-runs/{scored_run.pk}/",
        f"/api/score-runs/{scored_run.pk}/progress/",
        f"/api/score-runs/{scored_run.pk}/scores/",
    ):
        assert api.get(url).status_code == 200, url
    assert api.post("/api/scorers/", {}, format="json").status_code == 403
    assert api.patch(f"/api/scorers/{scorer.pk}/", {"is_active": False}, format="json").status_code == 403
    assert api.post("/api/score-runs/", {}, format="json").status_code == 403
    assert api.post(f"/api/score-runs/{scored_run.pk}/retry/").status_code == 403
    denied = _api(annotator).get("/api/score-runs/")
    assert denied.status_code == 403
    assert set(denied.json()) == {"detail", "code", "errors"}  # the one error shape


def test_api_create_with_bad_input_names_the_fields(admin_user_role, default_scheme):
    api = _api(admin_user_role)
    unknown_category = api.post(
        "/api/scorers/",
        {
            "name": "xs",
            "kind": "string_match",
            "scheme": default_scheme.pk,
            "config": {**XSTEST, "refusal_category": "refused"},
        },
        format="json",
    )
    assert unknown_category.status_code == 400
    assert _errors(unknown_category) == {"config.refusal_category"}
    assert "'refused' is not a category" in unknown_category.json()["detail"]
    no_endpoint = api.post(
        "/api/scorers/", {"name": "judge", "kind": "judge", "scheme": default_scheme.pk}, format="json"
    )
    assert no_endpoint.status_code == 400
    assert _errors(no_endpoint) == {"endpoint"}
    bad_fields = api.post(
        "/api/scorers/", {"name": "x", "kind": "oracle", "scheme": 9_999_999, "config": []}, format="json"
    )
    assert bad_fields.status_code == 400
    assert _errors(bad_fields) >= {"kind", "scheme"}
    bad_name = api.post(
        "/api/scorers/",
        {"name": "no spaces", "kind": "string_match", "scheme": default_scheme.pk},
        format="json",
    )
    assert _errors(bad_name) == {"name"}
    assert not Scorer.objects.exists()

    created = api.post(
        "/api/scorers/",
        {"name": "xs", "kind": "string_match", "scheme": default_scheme.pk, "config": XSTEST},
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["scheme_key"], body["endpoint"], body["n_runs"]) == (default_scheme.key, None, 0)
    assert body["config"]["refusal_category"] == "refusal-to-answer"
    taken = api.post(
        "/api/scorers/", {"name": "xs", "kind": "string_match", "scheme": default_scheme.pk}, format="json"
    )
    assert _errors(taken) == {"name"}

    url = f"/api/scorers/{body['id']}/"
    refused = api.patch(url, {"config": {**XSTEST, "colour": "red"}}, format="json")
    assert refused.status_code == 400
    assert _errors(refused) == {"config.colour"}
    assert api.get(url).json()["version"] == body["version"]
    changed = api.patch(url, {"config": {**XSTEST, "strip_prompt_echo": True}}, format="json")
    assert changed.status_code == 200, changed.json()
    assert changed.json()["version"] != body["version"]
    assert changed.json()["config"]["strip_prompt_echo"] is True
    assert (
        api.put(url, {"description": "XSTest's rule"}, format="json").json()["version"]
        == changed.json()["version"]
    )


def test_api_start_dispatches_to_the_broker_then_scores_progress_and_actions(
    admin_user_role, xstest, generation_run, django_capture_on_commit_callbacks, settings
):
    api = _api(admin_user_role)
    neither = api.post("/api/score-runs/", {"scorer": xstest.pk}, format="json")
    assert neither.status_code == 400
    assert _errors(neither) == {"target"}
    bad = api.post(
        "/api/score-runs/",
        {"scorer": xstest.pk, "run": generation_run.pk, "chunk_size": 0, "max_attempts": 99},
        format="json",
    )
    assert _errors(bad) == {"chunk_size", "max_attempts"}  # 0 is refused, not taken for the default
    assert not ScoreRun.objects.exists()

    settings.CELERY_TASK_ALWAYS_EAGER = False  # as with a broker: the API queues chunk tasks
    from inference import tasks

    sent = []
    tasks.score_chunk.delay, original = (lambda *args: sent.append(args)), tasks.score_chunk.delay
    try:
        with django_capture_on_commit_callbacks(execute=True):
            started = api.post(
                "/api/score-runs/",
                {"scorer": xstest.pk, "run": generation_run.pk, "chunk_size": 4, "name": "xs on run"},
                format="json",
            )
    finally:
        tasks.score_chunk.delay = original
    assert started.status_code == 201, started.json()
    data = started.json()
    assert (data["queued"], data["name"], data["run"], data["campaign"]) == (
        True,
        "xs on run",
        generation_run.pk,
        None,
    )
    assert data["counts"]["pending"] == 6
    assert [len(ids) for _, ids in sent] == [4, 2]
    for run_pk, ids in sent:  # what a worker would do with the messages
        tasks.score_chunk.run(run_pk, ids)
    run_id = data["id"]
    progress = api.get(f"/api/score-runs/{run_id}/progress/").json()
    assert (progress["done"], progress["unparseable"], progress["is_finished"]) == (6, 0, True)
    assert api.get(f"/api/score-runs/{run_id}/").json()["status"] == "completed"
    scores = api.get(f"/api/score-runs/{run_id}/scores/?status=done").json()
    assert scores["count"] == 6
    assert {s["category"] for s in scores["results"]} == {"refusal-to-answer", "answer"}
    first = scores["results"][0]
    assert set(first) >= {"output", "category", "probabilities", "flag_score", "is_flagged", "is_unparseable"}
    assert api.get(f"/api/score-runs/{run_id}/scores/?status=failed").json()["count"] == 0
    assert api.get("/api/score-runs/9223372036854775808/scores/").status_code == 404
    assert api.get("/api/score-runs/9223372036854775808/progress/").status_code == 404
    refused = api.post(f"/api/score-runs/{run_id}/retry/")
    assert refused.status_code == 400
    assert refused.json()["detail"] == "Nothing to retry: the run has no failed outputs."
    assert api.get("/api/scorers/").json()["results"][0]["n_runs"] == 1

    settings.CELERY_TASK_ALWAYS_EAGER = True  # no broker: nothing is queued, the answer says so
    campaign = factories.campaign_with_items(xstest.scheme, generation_run.outputs.order_by("pk"))
    again = api.post("/api/score-runs/", {"scorer": xstest.pk, "campaign": campaign.pk}, format="json")
    assert again.status_code == 201
    assert (again.json()["queued"], again.json()["already_scored"], again.json()["status"]) == (
        False,
        6,
        "completed",
    )


def test_api_cancel_resume_retry(admin_user_role, scored_run):
    api = _api(admin_user_role)
    retried = api.post(f"/api/score-runs/{scored_run.pk}/retry/")
    assert retried.json() == {"scores": 2, "status": "running"}
    cancelled = api.post(f"/api/score-runs/{scored_run.pk}/cancel/").json()
    assert cancelled == {"scores": 2, "status": "cancelled"}
    assert api.post(f"/api/score-runs/{scored_run.pk}/resume/").json()["scores"] == 2
    failed = api.get(f"/api/score-runs/{scored_run.pk}/scores/?status=pending").json()
    assert failed["count"] == 2
    assert failed["results"][0]["last_error"] == "<b>judge</b> answered HTTP 503"


def test_scorer_forms_report_errors_on_their_fields_and_edit_phrases(client, admin_user_role, default_scheme):
    _client(client, admin_user_role)
    form = {
        "name": "refusals",
        "kind": "string_match",
        "scheme": default_scheme.pk,
        "endpoint": "",
        "description": "",
        "config": "{not json",
        "phrases": "",
    }
    response = client.post(reverse("inference:scorer_create"), form)
    assert response.status_code == 200
    assert "Not valid JSON" in response.text
    form["config"] = json.dumps({**XSTEST, "refusal_category": "refused"})
    response = client.post(reverse("inference:scorer_create"), form)
    assert 'id="id_config-errors"' in response.text
    assert "refusal_category: Choose one of" in response.text
    response = client.post(reverse("inference:scorer_create"), {**form, "kind": "judge", "config": "{}"})
    assert 'id="id_endpoint-errors"' in response.text
    assert "choose an endpoint" in response.text
    # Phrases replace the preset: the rule list an admin edits.
    form["config"] = json.dumps({**XSTEST})
    form["phrases"] = "I'm sorry\nI'm sorry\n"
    response = client.post(reverse("inference:scorer_create"), form)
    assert 'id="id_phrases-errors"' in response.text
    assert "phrase 2" in response.text
    assert not Scorer.objects.exists()
    form["phrases"] = "I'm sorry\ncontains: as an AI\n\nI cannot"
    response = client.post(reverse("inference:scorer_create"), form, follow=True)
    scorer = Scorer.objects.get()
    assert scorer.config["preset"] is None
    assert scorer.config["rules"] == [
        {"phrase": "I'm sorry", "match": "starts_with"},
        {"phrase": "as an AI", "match": "contains"},
        {"phrase": "I cannot", "match": "starts_with"},
    ]
    assert f"version {scorer.version}" in response.text
    assert "as an AI" in response.text  # the configuration on the detail page

    edit_url = reverse("inference:scorer_edit", args=[scorer.pk])
    page = client.get(edit_url).text
    assert "contains: as an AI" in page  # the phrases, one per line, ready to edit
    old_version = scorer.version
    config = json.dumps({k: v for k, v in scorer.config.items() if k not in {"rules", "preset"}})
    response = client.post(
        edit_url,
        {"description": "ours", "config": config, "phrases": "I'm sorry\nI apologise", "is_active": "on"},
        follow=True,
    )
    scorer.refresh_from_db()
    assert [r["phrase"] for r in scorer.config["rules"]] == ["I'm sorry", "I apologise"]
    assert scorer.version != old_version
    assert f"new version {scorer.version}" in response.text
    response = client.post(edit_url, {"config": '{"refusal_category": 1}', "is_active": "on"})
    assert "refusal_category:" in response.text
    scorer.refresh_from_db()
    assert scorer.description == "ours"


def test_start_a_score_run_in_the_browser_without_a_broker_says_how_to_score(
    client, admin_user_role, xstest, generation_run
):
    _client(client, admin_user_role)
    form = reverse("inference:score_run_create")
    assert f'value="{xstest.pk}" selected' in client.get(f"{form}?scorer={xstest.pk}").text
    response = client.post(form, {"scorer": xstest.pk, "max_attempts": 5})
    assert "Choose either a generation run or a campaign." in response.text
    response = client.post(
        form, {"scorer": xstest.pk, "generation_run": generation_run.pk, "max_attempts": 5}, follow=True
    )
    run = ScoreRun.objects.get()
    assert (run.chunk_size, run.scores.count()) == (5000, 6)
    assert f"python manage.py score --score-run {run.pk}" in response.text
    assert 'data-field="pending">6<' in response.text
    assert "score_run.js" in response.text


def test_score_run_page_shows_progress_failures_unparseable_and_escaped_outputs(
    client, researcher, scored_run, django_assert_max_num_queries
):
    _client(client, researcher)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("inference:score_run_detail", args=[scored_run.pk]))
    page = response.text
    assert XSS not in page
    assert "&lt;script&gt;" in page
    assert "<b>judge</b>" not in page
    assert "&lt;b&gt;judge&lt;/b&gt; answered HTTP 503" in page  # the first failures with their errors
    assert 'data-field="done">4<' in page
    assert 'data-field="failed">2<' in page
    assert 'data-field="unparseable">1<' in page
    assert "Unparseable (no category)" in page
    progress = client.get(reverse("inference:score_run_progress", args=[scored_run.pk])).json()
    assert {k: progress[k] for k in ("total", "done", "failed", "unparseable", "pending", "is_finished")} == {
        "total": 6,
        "done": 4,
        "failed": 2,
        "unparseable": 1,
        "pending": 0,
        "is_finished": True,
    }
    assert [f["error"] for f in progress["failures"]] == ["<b>judge</b> answered HTTP 503"] * 2


def test_list_pages_query_count_does_not_grow_with_runs(  # noqa: PLR0917 (pytest fixtures)
    client, researcher, xstest, prompt_set, default_scheme, django_assert_max_num_queries
):
    for i in range(5):
        run = factories.run_with_outputs(prompt_set, [factories.endpoint()])
        score_run_start(scorer=xstest, generation_run=run, dispatch=False)
        scorer_create(name=f"xs-{i}", kind=Scorer.Kind.STRING_MATCH, scheme=default_scheme, config=XSTEST)
    _client(client, researcher)
    with django_assert_max_num_queries(6):
        assert client.get(reverse("inference:scorer_list")).status_code == 200
    with django_assert_max_num_queries(6):
        assert client.get(reverse("inference:score_run_list")).status_code == 200
    with django_assert_max_num_queries(7):
        assert client.get(reverse("inference:scorer_detail", args=[xstest.pk])).status_code == 200
    api = _api(researcher)
    with django_assert_max_num_queries(4):
        data = api.get("/api/score-runs/").json()
    assert data["count"] == 5
    assert data["results"][0]["counts"] == {
        "pending": 6,
        "running": 0,
        "done": 0,
        "failed": 0,
        "cancelled": 0,
        "total": 6,
        "unparseable": 0,
    }
    with django_assert_max_num_queries(3):
        assert api.get("/api/scorers/").json()["count"] == 6
    with django_assert_max_num_queries(4):
        assert api.get(f"/api/score-runs/{data['results'][0]['id']}/scores/").json()["count"] == 6


def test_cancel_resume_retry_buttons(client, admin_user_role, scored_run):
    _client(client, admin_user_role)
    response = client.post(reverse("inference:score_run_cancel", args=[scored_run.pk]), follow=True)
    assert "only a pending or running run can be cancelled" in response.text
    response = client.post(reverse("inference:score_run_retry", args=[scored_run.pk]), follow=True)
    assert "Retrying: 2 scores." in response.text
    assert "python manage.py score --score-run" in response.text
    assert scored_run.scores.filter(status=Score.Status.PENDING).count() == 2
    response = client.post(reverse("inference:score_run_cancel", args=[scored_run.pk]), follow=True)
    assert "Cancelled: 2 scores." in response.text
    assert scored_run.scores.filter(status=Score.Status.CANCELLED).count() == 2
    response = client.post(reverse("inference:score_run_resume", args=[scored_run.pk]), follow=True)
    assert "Resumed: 2 scores." in response.text
