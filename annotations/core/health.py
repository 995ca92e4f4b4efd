"""Liveness and readiness probes: `/healthz` (the process answers) and `/readyz` (it can serve).

Both are answered by a middleware placed first, before SecurityMiddleware and CommonMiddleware, for
two reasons: a container healthcheck calls `http://127.0.0.1:8000/readyz`, whose Host header is not in
DJANGO_ALLOWED_HOSTS (CommonMiddleware would answer 400) and whose scheme is plain HTTP
(SECURE_SSL_REDIRECT would answer 301); and a probe must not touch sessions or users.

`/readyz` checks, each with a short timeout, and answers 503 naming what failed:
- the database answers `SELECT 1`;
- no migration is unapplied (read once per process until true: migrations are not unapplied under a
  running server, and reading the migration graph on every probe would cost tens of milliseconds);
- the Celery broker accepts a connection, when there is one (without CELERY_BROKER_URL tasks run in
  the web process and there is nothing to reach).
The answer never includes a URL, a host name or an exception's text (they could carry credentials);
the server log has the details.
"""

import logging
from collections.abc import Callable

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
BROKER_TIMEOUT_SECONDS = 2.0
_migrations_applied = False


def _database_check() -> dict:
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        logger.exception("readyz: the database did not answer")
        return {"ok": False, "detail": "the database did not answer SELECT 1"}
    return {"ok": True}


def _migrations_check() -> dict:
    global _migrations_applied  # noqa: PLW0603 (a per-process fact, learnt once)
    if _migrations_applied:
        return {"ok": True, "pending": 0}
    try:
        connection = connections[DEFAULT_DB_ALIAS]
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception:
        logger.exception("readyz: the migration state could not be read")
        return {"ok": False, "detail": "the migration state could not be read"}
    if pending:
        names = [f"{migration.app_label}.{migration.name}" for migration, _ in pending[:5]]
        return {"ok": False, "pending": len(pending), "detail": "unapplied migrations: " + ", ".join(names)}
    _migrations_applied = True
    return {"ok": True, "pending": 0}


def _broker_check() -> dict:
    url = getattr(settings, "CELERY_BROKER_URL", None)
    if not url:
        return {"ok": True, "detail": "no broker: tasks run in this process"}
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=BROKER_TIMEOUT_SECONDS) as connection:
            connection.ensure_connection(max_retries=0, timeout=BROKER_TIMEOUT_SECONDS)
    except Exception:
        logger.exception("readyz: the Celery broker refused a connection")
        return {"ok": False, "detail": "the Celery broker refused a connection"}
    return {"ok": True}


def readiness() -> tuple[bool, dict]:
    """Whether this process can serve, and each check's result (database, migrations, broker)."""
    database = _database_check()
    checks = {
        "database": database,
        "migrations": _migrations_check() if database["ok"] else {"ok": False, "detail": "no database"},
        "broker": _broker_check(),
    }
    return all(check["ok"] for check in checks.values()), checks


class HealthMiddleware:
    """Answer GET/HEAD /healthz and /readyz (with or without a trailing slash) before anything else."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """The probe's answer, or the rest of the stack's."""
        path = request.path_info.rstrip("/")
        if path not in {HEALTH_PATH, READY_PATH}:
            return self.get_response(request)
        if request.method not in {"GET", "HEAD"}:
            response = JsonResponse(
                {"detail": "Use GET.", "code": "method_not_allowed", "errors": []}, status=405
            )
            response["Allow"] = "GET, HEAD"
            return response
        if path == HEALTH_PATH:
            response = JsonResponse({"status": "ok"})
        else:
            ready, checks = readiness()
            response = JsonResponse(
                {"status": "ready" if ready else "not ready", "checks": checks}, status=200 if ready else 503
            )
        response["Cache-Control"] = "no-store"
        return response
