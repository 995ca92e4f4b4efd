"""Build a tiny, random, deterministic RoBERTa sequence classifier that vLLM can serve on CPU.

Usage, with the python of the venv made by scripts/setup_vllm_cpu.sh::

    .venv-vllm/bin/python scripts/build_tiny_roberta.py .cache/models/tiny-roberta

It stands in for the classifiers the field uses (the ToxiGen RoBERTa `tomh/toxigen_roberta`, the
refusal classifier `protectai/distilroberta-base-rejection-v1`), which cannot be downloaded here.
Same architecture (`RobertaForSequenceClassification`, two labels named like ToxiGen's), random
weights (fixed seed), a byte-level BPE tokenizer trained on the tiny Llama's corpus. Its scores
mean nothing, but the serving path, the tokenizer and vLLM's classification API are real.

Shape: hidden 64, 2 layers, 2 attention heads of dimension 32 (a head size vLLM's CPU kernels
accept), 2 labels: LABEL_0 "benign", LABEL_1 "toxic". Idempotent, like build_tiny_llama.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import _model_folder  # scripts/ is on sys.path when a builder runs as a script
import build_tiny_llama

SEED = 20261203
VOCAB_SIZE = 1024
HIDDEN_SIZE = 64
NUM_LAYERS = 2
NUM_HEADS = 2
INTERMEDIATE_SIZE = 128
MAX_POSITIONS = 514  # RoBERTa's positions start after the padding index (2 + 512)
LABELS = {0: "benign", 1: "toxic"}
SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
MARKER = ".tiny-roberta-build.json"


def _build_tokenizer():  # -> transformers.PreTrainedTokenizerFast
    """Train a byte-level BPE tokenizer with RoBERTa's special tokens and wrap it for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    bos, pad, eos, unk, mask = SPECIAL_TOKENS
    tokenizer = Tokenizer(models.BPE(unk_token=unk))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(build_tiny_llama._corpus(), trainer=trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, tokenizer.token_to_id(bos)), (eos, tokenizer.token_to_id(eos))],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=bos,
        eos_token=eos,
        unk_token=unk,
        pad_token=pad,
        cls_token=bos,
        sep_token=eos,
        mask_token=mask,
        model_max_length=MAX_POSITIONS - 2,
    )


def _build_params() -> dict[str, object]:
    """Return the parameters that identify a build, stored in the marker file."""
    return {
        "seed": SEED,
        "vocab_size": VOCAB_SIZE,
        "hidden_size": HIDDEN_SIZE,
        "num_layers": NUM_LAYERS,
        "num_heads": NUM_HEADS,
        "intermediate_size": INTERMEDIATE_SIZE,
        "labels": {str(k): v for k, v in LABELS.items()},
    }


def build(outdir: Path) -> None:
    """Build the classifier and tokenizer into `outdir`, doing nothing if it is already complete."""
    if _model_folder.is_complete(outdir, MARKER, _build_params()):
        print(f"build_tiny_roberta: {outdir} already complete")
        return

    import torch
    from transformers import RobertaConfig, RobertaForSequenceClassification

    torch.manual_seed(SEED)
    tokenizer = _build_tokenizer()
    config = RobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN_SIZE,
        num_hidden_layers=NUM_LAYERS,
        num_attention_heads=NUM_HEADS,
        intermediate_size=INTERMEDIATE_SIZE,
        max_position_embeddings=MAX_POSITIONS,
        type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        num_labels=len(LABELS),
        id2label=dict(LABELS),
        label2id={v: k for k, v in LABELS.items()},
        initializer_range=0.5,
    )
    config.dtype = torch.float32
    model = RobertaForSequenceClassification(config).to(torch.float32).eval()

    def write(staging: Path) -> None:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)

    if not _model_folder.save_atomically(outdir, MARKER, _build_params(), write):
        return
    print(f"build_tiny_roberta: built {outdir}")


if __name__ == "__main__":
    sys.exit(_model_folder.main(build, __doc__.splitlines()[0]))
