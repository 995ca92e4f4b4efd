"""Settings, driven by the environment only (see docs/operations.md, "Environment variables").

The embedded default is a laptop: SQLite under AUDIT_DATA_DIR and Celery tasks run in-process.
DATABASE_URL switches to PostgreSQL; CELERY_BROKER_URL switches to real Celery workers on Redis.
With DJANGO_DEBUG=0 (production) SECRET_KEY and ALLOWED_HOSTS are required.
"""

from pathlib import Path

import dj_database_url
import plotly
from django.core.exceptions import ImproperlyConfigured

from auditproject.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DJANGO_DEBUG", True, "Development mode; set 0 in production.")
DATA_DIR = Path(
    env_str(
        "AUDIT_DATA_DIR", str(BASE_DIR / "data"), "Folder for the SQLite file and uploads (embedded mode)."
    )
)

_secret = env_str("DJANGO_SECRET_KEY", None, "Secret key; required when DJANGO_DEBUG=0.")
_hosts = env_list("DJANGO_ALLOWED_HOSTS", [], "Comma-separated host names; required when DJANGO_DEBUG=0.")
if not DEBUG:
    if not _secret:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY is required when DJANGO_DEBUG=0")
    if not _hosts:
        raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS is required when DJANGO_DEBUG=0")
SECRET_KEY = _secret or "django-insecure-development-key-only-for-debug-mode"
ALLOWED_HOSTS = _hosts or ["localhost", "127.0.0.1", "[::1]", "testserver"]
CSRF_TRUSTED_ORIGINS = env_list(
    "DJANGO_CSRF_TRUSTED_ORIGINS", [], "Comma-separated origins (https://host) allowed to POST forms."
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "annotations",
    "inference",
]

MIDDLEWARE = [
    # First: probes answer whatever the Host header and scheme (annotations/core/health.py).
    "annotations.core.health.HealthMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "annotations.core.middleware.QueryStringGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "auditproject.urls"
WSGI_APPLICATION = "auditproject.wsgi.application"
ASGI_APPLICATION = "auditproject.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "annotations.core.context_processors.roles",
            ],
        },
    },
]

_database_url = env_str(
    "DATABASE_URL", None, "postgres://user:pass@host:5432/name; unset means SQLite under AUDIT_DATA_DIR."
)
if _database_url:
    DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=60, conn_health_checks=True)}
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "audit.sqlite3",
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# plotly.js comes from the installed plotly package, served as static/plotly/plotly.min.js (never a CDN)
STATICFILES_DIRS = [BASE_DIR / "static", ("plotly", Path(plotly.__file__).parent / "package_data")]
STATIC_ROOT = Path(
    env_str("DJANGO_STATIC_ROOT", str(BASE_DIR / "staticfiles"), "Where collectstatic writes.")
)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Uploads: the platform reads uploads into memory to validate them whole before saving anything.
AUDIT_UPLOAD_MAX_BYTES = env_int("AUDIT_UPLOAD_MAX_BYTES", 5 * 1024 * 1024, "Largest accepted upload, bytes.")
AUDIT_UPLOAD_MAX_ROWS = env_int("AUDIT_UPLOAD_MAX_ROWS", 200_000, "Most rows accepted in one upload.")
AUDIT_MACHINE_ASSISTED_MIN_LABELS = env_int(
    "AUDIT_MACHINE_ASSISTED_MIN_LABELS",
    80,
    "Fewest human labels in a model x group cell before the machine-assisted estimates show an interval.",
)
if AUDIT_MACHINE_ASSISTED_MIN_LABELS < 2:
    raise ImproperlyConfigured(
        "AUDIT_MACHINE_ASSISTED_MIN_LABELS must be at least 2 (a variance needs two labels)"
    )
AUDIT_MACHINE_ASSISTED_MIN_EXPECTED = env_int(
    "AUDIT_MACHINE_ASSISTED_MIN_EXPECTED",
    10,
    "Fewest human labels expected with (and without) the outcome in a cell, at the scorer's predicted "
    "rate over the cell, before the machine-assisted estimates show an interval; 0 turns the rule off.",
)
if AUDIT_MACHINE_ASSISTED_MIN_EXPECTED < 0:
    raise ImproperlyConfigured("AUDIT_MACHINE_ASSISTED_MIN_EXPECTED must be 0 (off) or more")
AUDIT_PREPARED_STATEMENTS = env_bool(
    "AUDIT_PREPARED_STATEMENTS",
    True,
    "Plan the labelling statements once per PostgreSQL session; 0 behind a pooler in transaction mode.",
)
DATA_UPLOAD_MAX_MEMORY_SIZE = AUDIT_UPLOAD_MAX_BYTES + 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = AUDIT_UPLOAD_MAX_BYTES + 1024 * 1024

# Celery: without a broker, tasks run in-process (eagerly) so a laptop needs nothing else.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", None, "redis://host:6379/0; unset runs tasks in-process.")
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL is None
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 30 * 60, "Hard time limit of one task, seconds.")
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 60
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# The queue tasks are sent to (and the worker consumes when started without -Q); tasks queued by a
# task (the sweeper's chunks) go here too, so one deployment's web, worker and beat agree on it.
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "celery", "Name of the Celery queue.")
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT + 300}

# Generation: a chunk's claim on its outputs is refreshed while it works; a claim older than this is a
# dead worker's and may be taken over. Transient HTTP errors back off exponentially between these bounds.
INFERENCE_CLAIM_STALE_SECONDS = env_int(
    "INFERENCE_CLAIM_STALE_SECONDS", 300, "Seconds after which a generating worker's claim counts as dead."
)
# Celery beat runs the sweeper this often: idle runs get their stranded rows queued again
# (inference/services/sweeper.py). `celery -A auditproject beat` is a service in docker-compose.yml.
INFERENCE_SWEEP_SECONDS = env_int(
    "INFERENCE_SWEEP_SECONDS", 60, "How often Celery beat looks for runs whose rows no message will reach."
)
INFERENCE_ENDPOINT_CHECK_SECONDS = env_int(
    "INFERENCE_ENDPOINT_CHECK_SECONDS", 300, "How often Celery beat tests every model endpoint's replicas."
)
CELERY_IMPORTS = ("inference.services.sweeper",)  # the sweeper's task lives beside it
CELERY_BEAT_SCHEDULE = {
    "sweep-runs": {"task": "inference.sweep_runs", "schedule": float(INFERENCE_SWEEP_SECONDS)},
    "check-endpoints": {
        "task": "inference.check_endpoints",
        "schedule": float(INFERENCE_ENDPOINT_CHECK_SECONDS),
    },
}
INFERENCE_RETRY_BASE_MS = env_int(
    "INFERENCE_RETRY_BASE_MS", 1000, "First backoff after a transient error, ms."
)
INFERENCE_RETRY_MAX_MS = env_int("INFERENCE_RETRY_MAX_MS", 60_000, "Longest backoff between attempts, ms.")

# ModelBackend that reads permissions with the user's roles in one query (see annotations.core.roles).
AUTHENTICATION_BACKENDS = ["annotations.core.roles.RoleModelBackend"]

REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header makes a refused token (unknown, expired, revoked) a 401
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "annotations.core.tokens.HashedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "annotations.core.api_errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Refusal audit API",
    "DESCRIPTION": "Templates, groups, prompt sets, model endpoints, runs, campaigns, labels and statistics.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "ENUM_NAME_OVERRIDES": {
        "CampaignStatusEnum": "annotations.models.Campaign.Status",
        "ItemStatusEnum": "annotations.models.CampaignItem.Status",
        "RunStatusEnum": "inference.models.GenerationRun.Status",
        "OutputStatusEnum": "inference.models.Output.Status",
        "ScorerKindEnum": "inference.models.Scorer.Kind",
    },
    "SWAGGER_UI_DIST": "SIDECAR",  # served from our static files, never a CDN
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Security: strict in production, relaxed only for local development over plain HTTP.
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool(
        "DJANGO_SECURE_SSL_REDIRECT", True, "Redirect HTTP to HTTPS in production."
    )
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31_536_000, "HSTS max-age in production.")
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# Login rate limiting (annotations/core/security.py): failures per username and address before a lockout.
AUDIT_API_TOKEN_DAYS = env_int(
    "AUDIT_API_TOKEN_DAYS", 90, "Days a new API token stays valid (issue_token --days overrides it)."
)
AUDIT_LOGIN_FAILURE_LIMIT = env_int("AUDIT_LOGIN_FAILURE_LIMIT", 5, "Failed logins before a lockout.")
AUDIT_LOGIN_LOCKOUT_SECONDS = env_int("AUDIT_LOGIN_LOCKOUT_SECONDS", 900, "How long a lockout lasts.")
_cache_url = env_str("AUDIT_CACHE_URL", None, "redis://host:6379/1 shared by web workers; unset: in-process.")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url}
    if _cache_url
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}
# With a cache every web worker shares, sessions are read from it (written through to the database), which
# takes a query off every request. A per-process cache would keep a session alive in one worker after a
# logout in another, so without AUDIT_CACHE_URL sessions stay in the database only.
SESSION_ENGINE = (
    "django.contrib.sessions.backends.cached_db" if _cache_url else "django.contrib.sessions.backends.db"
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("DJANGO_LOG_LEVEL", "INFO", "Root log level.")},
    # httpx logs every request at INFO: thousands of lines (and CPU) per generation chunk.
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}
