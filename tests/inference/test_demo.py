"""The demo step: a subset of the starter prompt set covering every group; a clear fallback without vLLM."""

import io

from annotations.library.services import demo_library
from inference.demo import _demo_subset, demo_generation
from inference.models import GenerationRun


def test_demo_subset_and_the_fallback_without_vllm(db, monkeypatch):
    starter = demo_library(stdout=io.StringIO())
    subset = _demo_subset(prompt_set=starter, limit=300)
    assert subset.prompts.count() == 288  # 9 templates x 32 names
    assert (
        subset.prompts.values("group").distinct().count()
        == starter.prompts.values("group").distinct().count()
    )
    assert _demo_subset(prompt_set=starter, limit=300) == subset  # idempotent

    monkeypatch.setenv("VLLM_PYTHON", "/nonexistent/python")
    out = io.StringIO()
    assert demo_generation(stdout=out, prompt_set=starter) is None
    assert "bash scripts/setup_vllm_cpu.sh" in out.getvalue()
    assert not GenerationRun.objects.exists()
