"""Endpoint and run pages and API: who may do what, forms, live progress JSON, actions, imports."""

import io
import json

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from inference.models import GenerationRun, ModelEndpoint, Output
from inference.services.runs import run_generate_in_process, run_start
from tests.conftest import DEMO_PASSWORD
from tests.support.fake_openai import service_unavailable

pytestmark = pytest.mark.usefixtures("fast_backoff")

XSS = "<script>window.__pwned=1</script>"


def _client(client, user):
    client.login(username=user.username, password=DEMO_PASSWORD)
    return client


def _api(user):
    api = APIClient()
    api.force_authenticate(user)
    return api


@pytest.fixture
def finished_run(prompt_set, chat_endpoint, fake_server):
    """A run with 4 outputs done and 2 failed (a 503 that never ends, error text with markup)."""
    fake_server.set_rule(lambda info: service_unavailable() if "Maria" in info.prompt else None)
    run = run_start(
        prompt_set=prompt_set, endpoints=[chat_endpoint], samples_per_prompt=1, max_attempts=2, dispatch=False
    )
    run_generate_in_process(run=run)
    run.outputs.filter(status=Output.Status.DONE).update(text=XSS + " answer")
    return run


def test_roles_researchers_read_admins_write(client, researcher, annotator, finished_run, chat_endpoint):
    pages = [
        reverse("inference:endpoint_list"),
        reverse("inference:run_list"),
        reverse("inference:run_detail", args=[finished_run.pk]),
        reverse("inference:run_progress", args=[finished_run.pk]),
    ]
    admin_pages = [
        reverse("inference:endpoint_create"),
        reverse("inference:endpoint_edit", args=[chat_endpoint.pk]),
        reverse("inference:run_create"),
        reverse("inference:run_import"),
    ]
    _client(client, researcher)
    for url in pages:
        assert client.get(url).status_code == 200, url
    for url in admin_pages:
        assert client.get(url).status_code == 403, url
    assert client.post(reverse("inference:run_cancel", args=[finished_run.pk])).status_code == 403
    client.logout()
    _client(client, annotator)
    for url in pages:
        assert client.get(url).status_code == 403, url
    client.logout()
    assert client.get(pages[0]).status_code == 302  # guests go to the login page
    api = _api(researcher)
    assert api.get("/api/runs/").status_code == 200
    assert api.post("/api/endpoints/", {}, format="json").status_code == 403
    assert api.post(f"/api/runs/{finished_run.pk}/retry/").status_code == 403
    assert _api(annotator).get("/api/runs/").status_code == 403


def test_register_edit_and_test_connection_in_the_browser_forms(client, admin_user_role, fake_server):
    _client(client, admin_user_role)
    form = {
        "name": "Llama-2-7b-chat",
        "base_urls": "ftp://nope\nhttp://127.0.0.1:1/v1",
        "served_model_name": "fake-model",
        "api_mode": "chat",
        "system_prompt": "You are a helpful assistant. Complete the [BLANK].",
        "temperature": "0.7",
        "top_p": "1.5",
        "max_tokens": "64",
        "seed": "",
        "stop": "",
        "concurrency_limit": "16",
        "request_timeout": "30",
        "is_active": "on",
    }
    response = client.post(reverse("inference:endpoint_create"), form)
    assert response.status_code == 200
    assert "not an http(s) URL" in response.text
    assert "top_p must be above 0 and at most 1" in response.text
    assert not ModelEndpoint.objects.exists()
    form.update(base_urls=f"{fake_server.base_url}\nhttp://127.0.0.1:9/v1", top_p="0.9")
    assert client.post(reverse("inference:endpoint_create"), form).status_code == 302
    endpoint = ModelEndpoint.objects.get()
    assert endpoint.base_urls == [fake_server.base_url, "http://127.0.0.1:9/v1"]
    response = client.post(reverse("inference:endpoint_check", args=[endpoint.pk]), follow=True)
    assert "the connection test failed" in response.text
    page = response.text
    assert "fake-model" in page  # what the live replica reports
    assert "ConnectError" in page  # what went wrong with the other
    form.update(base_urls=fake_server.base_url, seed="7", stop="\n\nUser:")
    assert client.post(reverse("inference:endpoint_edit", args=[endpoint.pk]), form).status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.seed, endpoint.stop) == (7, ["User:"])
    response = client.post(reverse("inference:endpoint_check", args=[endpoint.pk]), follow=True)
    assert "every replica answers and serves fake-model" in response.text


def test_start_a_run_in_the_browser_without_a_broker_says_how_to_generate(
    client, admin_user_role, prompt_set, chat_endpoint
):
    _client(client, admin_user_role)
    response = client.post(
        reverse("inference:run_create"),
        {
            "prompt_set": prompt_set.pk,
            "endpoints": [chat_endpoint.pk],
            "samples_per_prompt": 3,
            "chunk_size": 256,
            "max_attempts": 5,
        },
        follow=True,
    )
    run = GenerationRun.objects.get()
    assert run.outputs.count() == 18
    assert f"python manage.py generate --run {run.pk}" in response.text
    assert 'data-field="pending">18<' in response.text


def test_run_page_shows_progress_failures_and_escaped_outputs(
    client, researcher, finished_run, django_assert_max_num_queries
):
    _client(client, researcher)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("inference:run_detail", args=[finished_run.pk]))
    page = response.text
    assert XSS not in page
    assert "&lt;script&gt;" in page
    assert 'data-field="done">4<' in page
    assert 'data-field="failed">2<' in page
    assert "HTTP 503" in page  # the recent failures with their errors
    assert "run_progress.js" in page
    progress = client.get(reverse("inference:run_progress", args=[finished_run.pk])).json()
    assert {k: progress[k] for k in ("total", "done", "failed", "pending", "running", "is_finished")} == {
        "total": 6,
        "done": 4,
        "failed": 2,
        "pending": 0,
        "running": 0,
        "is_finished": True,
    }
    assert progress["outputs_per_second"] > 0
    assert len(progress["failures"]) == 2
    assert "(after 2 attempts)" in progress["failures"][0]["error"]


def test_run_list_query_count_does_not_grow_with_runs(
    client, researcher, prompt_set, chat_endpoint, django_assert_max_num_queries
):
    for _ in range(5):
        run_start(prompt_set=prompt_set, endpoints=[chat_endpoint], samples_per_prompt=1, dispatch=False)
    _client(client, researcher)
    with django_assert_max_num_queries(8):
        assert client.get(reverse("inference:run_list")).status_code == 200
    with django_assert_max_num_queries(6):
        data = _api(researcher).get("/api/runs/").json()
    assert data["count"] == 5
    assert data["results"][0]["counts"] == {
        "pending": 6,
        "running": 0,
        "done": 0,
        "failed": 0,
        "cancelled": 0,
        "total": 6,
    }


def test_cancel_resume_retry_buttons(client, admin_user_role, finished_run, fake_server):
    _client(client, admin_user_role)
    response = client.post(reverse("inference:run_cancel", args=[finished_run.pk]), follow=True)
    assert "only a pending or running run can be cancelled" in response.text
    fake_server.clear_faults()
    response = client.post(reverse("inference:run_retry", args=[finished_run.pk]), follow=True)
    assert "Retrying: 2 outputs." in response.text
    assert finished_run.outputs.filter(status=Output.Status.PENDING).count() == 2
    assert (
        client.post(reverse("inference:run_cancel", args=[finished_run.pk]), follow=True).status_code == 200
    )
    assert finished_run.outputs.filter(status=Output.Status.CANCELLED).count() == 2
    response = client.post(reverse("inference:run_resume", args=[finished_run.pk]), follow=True)
    assert "Resumed: 2 outputs." in response.text


def test_api_endpoints_runs_actions_and_outputs(
    admin_user_role, prompt_set, fake_server, django_capture_on_commit_callbacks, settings
):
    api = _api(admin_user_role)
    bad = api.post(
        "/api/endpoints/",
        {"name": "x", "served_model_name": "m", "base_urls": ["nope"], "temperature": -1},
        format="json",
    )
    assert bad.status_code == 400
    assert {e["field"] for e in bad.json()["errors"]} == {"base_urls", "temperature"}
    created = api.post(
        "/api/endpoints/",
        {
            "name": "fake",
            "served_model_name": "fake-model",
            "base_urls": [fake_server.base_url],
            "api_mode": "completion",
            "max_tokens": 8,
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    endpoint_id = created.json()["id"]
    assert (
        api.patch(f"/api/endpoints/{endpoint_id}/", {"concurrency_limit": 4}, format="json").json()[
            "concurrency_limit"
        ]
        == 4
    )
    check = api.post(f"/api/endpoints/{endpoint_id}/check/").json()
    assert check["ok"] is True
    assert check["replicas"][0]["model_ids"] == ["fake-model"]

    settings.CELERY_TASK_ALWAYS_EAGER = False  # as with a broker: the API queues chunk tasks
    from inference import tasks

    sent = []
    tasks.generate_chunk.delay, original = (lambda *args: sent.append(args)), tasks.generate_chunk.delay
    try:
        with django_capture_on_commit_callbacks(execute=True):
            started = api.post(
                "/api/runs/",
                {
                    "prompt_set": prompt_set.pk,
                    "endpoints": [endpoint_id],
                    "samples_per_prompt": 2,
                    "chunk_size": 5,
                },
                format="json",
            )
    finally:
        tasks.generate_chunk.delay = original
    assert started.status_code == 201, started.json()
    run_id = started.json()["id"]
    assert started.json()["queued"] is True
    assert [len(ids) for _, ids in sent] == [5, 5, 2]
    for run_pk, ids in sent:  # what a worker would do with the messages
        tasks.generate_chunk.run(run_pk, ids)
    assert api.get(f"/api/runs/{run_id}/progress/").json()["done"] == 12
    assert api.get(f"/api/runs/{run_id}/").json()["status"] == "completed"
    outputs = api.get(f"/api/runs/{run_id}/outputs/?status=done").json()
    assert outputs["count"] == 12
    first = outputs["results"][0]
    assert first["request"]["prompt"] == first["prompt_text"]
    assert first["endpoint_snapshot"]["model_id"] == "fake-model"
    assert api.get("/api/runs/9223372036854775808/outputs/").status_code == 404
    refused = api.post(f"/api/runs/{run_id}/retry/")
    assert refused.status_code == 400
    assert refused.json()["detail"] == "Nothing to retry: the run has no failed outputs."


def test_api_import_all_or_nothing(admin_user_role, prompt_set):
    api = _api(admin_user_role)
    key = prompt_set.prompts.first().key
    bad = io.BytesIO(f"prompt_key,output\n{key},fine\nmissing,x\n".encode())
    bad.name = "outputs.csv"
    response = api.post(
        "/api/runs/import/",
        {"prompt_set": prompt_set.pk, "model_name": "gpt", "file": bad},
        format="multipart",
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"row": 3, "field": "prompt_key", "message": f"No prompt with key 'missing' in {prompt_set}."}
    ]
    assert not GenerationRun.objects.exists()
    good = io.BytesIO((json.dumps({"prompt_key": key, "output": "ok"}) + "\n").encode())
    good.name = "outputs.jsonl"
    response = api.post(
        "/api/runs/import/",
        {"prompt_set": prompt_set.pk, "model_name": "gpt", "file": good},
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["kind"] == "imported"
    assert response.json()["counts"]["done"] == 1


def test_import_page_lists_row_errors(client, admin_user_role, prompt_set):
    _client(client, admin_user_role)
    upload = io.BytesIO(b"prompt_key,output\nnope,<b>x</b>\n")
    upload.name = "bad.csv"
    response = client.post(
        reverse("inference:run_import"), {"prompt_set": prompt_set.pk, "model_name": "m", "file": upload}
    )
    assert response.status_code == 200
    assert "Nothing was imported: 1 problem." in response.text
    assert "<td>2</td><td>prompt_key</td>" in response.text


def test_beat_checks_every_endpoint_and_the_page_shows_it_without_calling_a_server(
    client, admin_user_role, fake_server, monkeypatch
):
    """inference.check_endpoints (in CELERY_BEAT_SCHEDULE) stores each replica's answer; the endpoints
    page reads only what is stored: it renders with every server call broken."""
    from django.conf import settings

    from inference import tasks
    from inference.services import endpoints as endpoint_services
    from tests import factories

    up = factories.endpoint(name="up", base_urls=[fake_server.base_url], served="fake-model")
    mixed = factories.endpoint(
        name="mixed", base_urls=[fake_server.base_url, "http://127.0.0.1:9/v1"], served="fake-model"
    )
    wrong = factories.endpoint(name="wrong", base_urls=[fake_server.base_url], served="not-served")
    assert settings.CELERY_BEAT_SCHEDULE["check-endpoints"]["task"] == "inference.check_endpoints"
    assert tasks.check_endpoints() == {up.pk: True, mixed.pk: False, wrong.pk: False}
    mixed.refresh_from_db()
    assert [r["ok"] for r in mixed.last_check["replicas"]] == [True, False]

    def no_calls(*args, **kwargs):
        raise AssertionError("the endpoints page must not call a model server")

    monkeypatch.setattr(endpoint_services, "models_list", no_calls)
    page = _client(client, admin_user_role).get(reverse("inference:endpoint_list")).text
    assert page.count('<span class="ok">yes</span>') == 2  # up, and mixed's first replica
    assert page.count('<span class="error">no</span>') == 2  # mixed's closed port, wrong's model
    assert "the server does not serve &#x27;not-served&#x27;" in page
    assert "repeats it every 5 min" in page
