"""Shared fixtures.

Like Django REST framework's suite: SQLite in memory by default, and DATABASE_URL switches the same suite
to PostgreSQL (as CI does). Tests that need a second process sharing the database (a real Celery worker)
skip on SQLite with the reason.
"""

import importlib
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from tests.support.celery_worker import beat_start, worker_start

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "artifacts"
SHARED = Path(os.environ.get("AUDIT_SHARED_DIR", REPO.parent / "shared"))
DEMO_PASSWORD = "correct-horse-battery-staple"
# How long a new `celery worker` may take to say "ready.": about 3 s idle, 10-15 s on a 2-core machine
# at a load of 8 (Django and Celery imports); a safety net so a worker that never starts fails with its log.
WORKER_START_TIMEOUT = 120


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """PBKDF2 costs ~0.5 s per user on this machine; tests only need hashing to work, not to be slow."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def default_scheme(db):
    """The study's six-category scheme (recreated if a transactional test flushed it)."""
    from django.apps import apps

    from annotations.models import LabelScheme

    migration = importlib.import_module("annotations.migrations.0003_default_scheme")
    if not LabelScheme.objects.filter(key=migration.SCHEME_KEY).exists():
        migration.create_scheme(apps, None)
    return LabelScheme.objects.get(key=migration.SCHEME_KEY)


@pytest.fixture
def make_user(db):
    """Factory: make_user("annotator", "ann1") -> a user with that role (password DEMO_PASSWORD)."""
    from annotations.core.users import user_create

    def make(role: str | None, username: str | None = None):
        from django.contrib.auth import get_user_model

        name = username or f"{role or 'norole'}-{uuid.uuid4().hex[:8]}"
        if role is None:
            return get_user_model().objects.create_user(username=name, password=DEMO_PASSWORD)
        return user_create(username=name, role=role, password=DEMO_PASSWORD, validate_password=False)

    return make


@pytest.fixture
def admin_user_role(make_user):
    """A user with the admin role."""
    return make_user("admin", "admin1")


@pytest.fixture
def researcher(make_user):
    """A user with the researcher role."""
    return make_user("researcher", "researcher1")


@pytest.fixture
def annotator(make_user):
    """A user with the annotator role."""
    return make_user("annotator", "annotator1")


def _requires_postgres() -> None:
    if connection.vendor != "postgresql":
        pytest.skip(
            "needs PostgreSQL shared with another process: set DATABASE_URL (the README's test command does)"
        )


def _database_url_for_test_db() -> str:
    s = connection.settings_dict
    user = s.get("USER") or "postgres"
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


@pytest.fixture
def celery_worker_process(transactional_db, tmp_path):
    """A real `celery worker` process consuming from Redis and writing to the test database.

    The test process sends tasks through the same broker (not eagerly) while the fixture is active.
    Yields a handle with `.log_path` and `.wait_for(predicate, timeout)`.
    """
    _requires_postgres()
    from auditproject.celery import app

    broker = os.environ.get("CELERY_TEST_BROKER_URL", "redis://127.0.0.1:6379/15")
    queue = f"test-{uuid.uuid4().hex[:10]}"
    log_path = tmp_path / "celery-worker.log"
    env = {
        **os.environ,
        "DATABASE_URL": _database_url_for_test_db(),
        "CELERY_BROKER_URL": broker,
        "CELERY_TASK_DEFAULT_QUEUE": queue,  # tasks queued by tasks (the sweeper's chunks) stay on it
    }
    process = worker_start(queue, log_path, env)
    beat = beat_start(tmp_path / "celery-beat.log", env)  # the sweeper, as docker-compose runs it
    old = {key: app.conf.get(key) for key in ("broker_url", "task_always_eager", "task_default_queue")}
    app.conf.update(broker_url=broker, task_always_eager=False, task_default_queue=queue)
    _reset_broker_connections(app)
    handle = _WorkerHandle(process, log_path, queue, env=env, beat=beat)
    try:
        handle.wait_for(
            lambda: b"ready." in log_path.read_bytes(), timeout=WORKER_START_TIMEOUT, what="worker ready"
        )
        yield handle
    finally:
        app.conf.update(old)
        _reset_broker_connections(app)
        handle.stop()
        handle.beat_stop()


def _reset_broker_connections(app) -> None:
    """Drop Celery's pooled broker connections so the next send uses the current broker_url."""
    from kombu import pools

    pools.reset()  # kombu caches producer pools per connection URL, process-wide
    app._pool = None
    app.amqp._producer_pool = None


class _WorkerHandle:
    """A running worker process; `wait_for` fails with the worker's log when the worker died."""

    def __init__(
        self,
        process: subprocess.Popen,
        log_path: Path,
        queue: str,
        *,
        env: dict[str, str] | None = None,
        beat: subprocess.Popen | None = None,
    ) -> None:
        self.process = process
        self.log_path = log_path
        self.queue = queue
        self.env = env or {}  # what the worker was started with (DATABASE_URL, broker, queue)
        self.beat = beat

    def beat_stop(self) -> None:
        """Stop the fixture's beat, if any (TERM, then KILL)."""
        if self.beat is not None and self.beat.poll() is None:
            os.killpg(self.beat.pid, 15)
            try:
                self.beat.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.beat.pid, 9)
                self.beat.wait(timeout=5)

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the worker's log."""
        return self.log_path.read_bytes()[-chars:].decode("utf-8", "replace")

    def wait_for(self, predicate, *, timeout: float, what: str = "condition") -> None:
        """Poll `predicate` until true; fail with the log tail on timeout or when the worker exits.

        `timeout` is a safety net so a hang fails with the worker's log instead of waiting forever; it
        is not a speed check, so callers give many times what the step takes on a busy machine.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if self.process.poll() is not None:
                pytest.fail(
                    f"celery worker exited ({self.process.returncode}) before {what}:\n{self.log_tail()}"
                )
            time.sleep(0.1)
        pytest.fail(f"timed out after {timeout}s waiting for {what}:\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop the worker's process group (TERM, then KILL)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait(timeout=5)


@pytest.fixture(autouse=True)
def _clear_cache():
    """Each test starts with an empty cache (login failure counts live there)."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
