#!/usr/bin/env bash
# Installs and starts the platform on the embedded default (SQLite, tasks in-process) with demo users
# and demo data, then serves it on http://127.0.0.1:${PORT:-8000}/ until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/_venv.sh
ensure_venv .

# The embedded default: no DATABASE_URL, no broker.
unset DATABASE_URL CELERY_BROKER_URL
export DJANGO_DEBUG=1
port=${PORT:-8000}

.venv/bin/python manage.py migrate --noinput -v 0
.venv/bin/python manage.py demo_seed
echo
echo "The platform is at http://127.0.0.1:${port}/  (Ctrl-C stops it)"
exec .venv/bin/python manage.py runserver "127.0.0.1:${port}" --noreload
