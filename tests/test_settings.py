"""Settings come from the environment; production refuses to start without its secrets."""

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

# Each subprocess (a fresh Django start) takes 1-3 s idle, about 20 s on a 2-core machine at a load of 8;
# the timeout is a safety net so a hung process fails the test instead of hanging the suite.
SUBPROCESS_TIMEOUT = 120

PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "x" * 64 + "-a-long-random-production-secret-key",
    "DJANGO_ALLOWED_HOSTS": "audit.example.org",
}


def _manage(*args: str, env: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "CELERY_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env={**clean, "AUDIT_DATA_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
    )


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS"])
def test_production_refuses_to_start_without_required_values(missing, tmp_path):
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    result = _manage("check", env=env, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert missing in result.stderr


def test_check_deploy_is_clean_with_production_values(tmp_path):
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION, tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_bad_boolean_is_named(tmp_path):
    result = _manage("check", env={"DJANGO_DEBUG": "maybe"}, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "DJANGO_DEBUG must be a boolean" in result.stderr


def test_static_files_are_served_with_debug_off(tmp_path):
    """collectstatic + whitenoise serve the stylesheet in production mode, with far-future caching."""
    static_root = tmp_path / "static"
    env = {**PRODUCTION, "DJANGO_STATIC_ROOT": str(static_root)}
    result = _manage("collectstatic", "--noinput", env=env, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    script = (
        "import django;django.setup();from django.test import Client;"
        "from django.templatetags.static import static;"
        "url=static('annotations/base.css');r=Client().get(url,secure=True,HTTP_HOST='audit.example.org');"
        "print(url, r.status_code, r.headers.get('Cache-Control'))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    run = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        env={
            **clean,
            "AUDIT_DATA_DIR": str(tmp_path),
            "DJANGO_SETTINGS_MODULE": "auditproject.settings",
            **env,
        },
    )
    assert run.returncode == 0, run.stderr
    url, status, cache = run.stdout.split(" ", 2)
    assert status == "200"
    assert url.startswith("/static/annotations/base.")
    assert url != "/static/annotations/base.css"  # the manifest storage hashes names
    assert "max-age=315360000" in cache


def test_embedded_default_is_sqlite_with_in_process_tasks(tmp_path):
    script = (
        "import django;django.setup();from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_TASK_ALWAYS_EAGER)"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "CELERY_"))}
    run = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        env={**clean, "AUDIT_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "auditproject.settings"},
    )
    assert run.stdout.split() == ["django.db.backends.sqlite3", "True"], run.stderr


def test_web_workers_warm_up_at_start():
    """wsgi.py loads the URLconf, views and main templates before the first request (warmup.py)."""
    import importlib

    from django.urls import get_resolver

    wsgi = importlib.import_module("auditproject.wsgi")
    assert callable(wsgi.application)
    assert get_resolver().url_patterns
