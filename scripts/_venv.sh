# Sourced by demo.sh, test.sh and lock_upgrade.sh: install the project into .venv from uv.lock, never
# from the ranges in pyproject.toml. uv itself comes from locks/uv.txt (pinned, with hashes) in its own
# small venv, .venv-uv.
export UV_PYTHON="${PYTHON:-python3}" UV_PYTHON_DOWNLOADS=never UV_NO_PROGRESS=1
UV=.venv-uv/bin/uv

ensure_uv() {
  if ! "$UV" --version 2>/dev/null | grep -qF "$(grep -oE '^uv==[^ ]+' locks/uv.txt | cut -d= -f3)"; then
    rm -rf .venv-uv
    "${PYTHON:-python3}" -m venv .venv-uv
    .venv-uv/bin/python -m pip install -q --disable-pip-version-check --require-hashes -r locks/uv.txt \
      2>&1 | { grep -v -e "^WARNING: Location" -e "is ignored: it is neither" || true; }
  fi
}

ensure_venv() {  # usage: ensure_venv [--extra dev]  (exactly the locked set; removes anything else)
  ensure_uv
  "$UV" sync --quiet --frozen "$@"
}
