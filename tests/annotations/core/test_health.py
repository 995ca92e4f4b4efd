"""/healthz and /readyz: answered first, whatever the Host and scheme, naming what is not ready."""

import os

import pytest
from django.db import connections
from django.db.migrations.executor import MigrationExecutor

from annotations.core import health

BROKER = os.environ.get("CELERY_TEST_BROKER_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(autouse=True)
def _fresh_migration_state(monkeypatch):
    monkeypatch.setattr(health, "_migrations_applied", False)


@pytest.mark.django_db
def test_healthz_answers_without_touching_the_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_probes_answer_a_host_not_allowed_and_plain_http_under_ssl_redirect(client, settings):
    settings.ALLOWED_HOSTS = ["audit.example.org"]
    settings.SECURE_SSL_REDIRECT = True
    settings.CELERY_BROKER_URL = None
    assert client.get("/healthz", HTTP_HOST="127.0.0.1:8000").status_code == 200
    assert client.get("/readyz/", HTTP_HOST="127.0.0.1:8000").status_code == 200
    # Everything else still goes through host validation and the redirect.
    assert client.get("/login/", HTTP_HOST="127.0.0.1:8000").status_code == 400


@pytest.mark.django_db
def test_ready_with_a_reachable_broker(client, settings):
    settings.CELERY_BROKER_URL = BROKER
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["migrations"] == {"ok": True, "pending": 0}
    assert body["checks"]["broker"] == {"ok": True}


@pytest.mark.django_db
def test_no_broker_is_ready_in_the_embedded_mode(client, settings):
    settings.CELERY_BROKER_URL = None
    body = client.get("/readyz").json()
    assert body["checks"]["broker"] == {"ok": True, "detail": "no broker: tasks run in this process"}


@pytest.mark.django_db
def test_an_unreachable_broker_is_503_and_names_the_broker_not_its_url(client, settings):
    settings.CELERY_BROKER_URL = "redis://:secret-password@127.0.0.1:1/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert body["checks"]["broker"] == {"ok": False, "detail": "the Celery broker refused a connection"}
    assert body["checks"]["database"]["ok"] is True
    assert "secret-password" not in response.content.decode()
    assert "127.0.0.1" not in response.content.decode()


@pytest.mark.django_db
def test_unapplied_migrations_are_503_and_named(client, settings, monkeypatch):
    settings.CELERY_BROKER_URL = None
    executor = MigrationExecutor(connections["default"])
    last = executor.loader.graph.node_map[("annotations", "0001_initial")].key
    fake_plan = [(executor.loader.graph.nodes[last], False)]
    monkeypatch.setattr(MigrationExecutor, "migration_plan", lambda self, targets: fake_plan)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["migrations"] == {
        "ok": False,
        "pending": 1,
        "detail": "unapplied migrations: annotations.0001_initial",
    }


@pytest.mark.django_db
def test_a_database_that_does_not_answer_is_503(client, settings, monkeypatch):
    settings.CELERY_BROKER_URL = None
    monkeypatch.setattr(health, "_database_check", lambda: {"ok": False, "detail": "no answer"})
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()["checks"]
    assert body["database"]["ok"] is False
    assert body["migrations"] == {"ok": False, "detail": "no database"}


def test_the_database_check_reports_a_failed_query(monkeypatch):
    class Broken:
        def cursor(self):
            raise RuntimeError("server closed the connection unexpectedly")

    monkeypatch.setattr(health, "connections", {"default": Broken()})
    assert health._database_check() == {"ok": False, "detail": "the database did not answer SELECT 1"}


@pytest.mark.django_db
def test_probes_take_get_and_head_only(client):
    response = client.post("/healthz")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert client.head("/healthz").status_code == 200
