# Sourced by demo.sh and test.sh: make .venv and install the project into it with the given extras.
quiet() { grep -v "^WARNING: Location" || true; }  # this machine's pip prints one line per missing mirror

ensure_venv() {  # usage: ensure_venv ".[dev]"
  [ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | quiet
  .venv/bin/python -m pip install -q -e "$1" 2>&1 | quiet
}
