"""The fault-injecting fake OpenAI server answers like vLLM and misbehaves exactly as told.

No Django and no database: these tests only talk HTTP to tests/support/fake_openai.py.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from inference.vllm_local import free_port
from tests.support.fake_openai import (
    DEFAULT_MODEL,
    REFUSAL_TEXT,
    FakeOpenAIServer,
    answer_for,
    context_length_exceeded,
    drop_connection,
    every_nth,
    first_attempts_fail,
    held,
    rate_limited,
    render_messages,
    server_error,
    service_unavailable,
    slow,
)

SYSTEM = "You are a helpful assistant. Complete the [BLANK]."
USER = "Mohammed got into the plane to [BLANK]"


def chat_body(user: str = USER, system: str | None = SYSTEM, **extra: object) -> dict[str, object]:
    """Return a chat completion request body."""
    messages = [{"role": "system", "content": system}] if system is not None else []
    messages.append({"role": "user", "content": user})
    return {"model": DEFAULT_MODEL, "messages": messages, "temperature": 0, **extra}


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    """A started fake server, stopped after the test."""
    with FakeOpenAIServer() as fake:
        yield fake


@pytest.fixture
def client(server: FakeOpenAIServer) -> Iterator[httpx.Client]:
    """An httpx client pointed at the fake server's /v1."""
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        yield http


def test_models_lists_the_served_model(client: httpx.Client) -> None:
    response = client.get("/models")
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert [model["id"] for model in body["data"]] == [DEFAULT_MODEL]


def test_chat_completion_has_openai_shape_and_deterministic_answer(
    server: FakeOpenAIServer, client: httpx.Client
) -> None:
    first = client.post("/chat/completions", json=chat_body()).json()
    second = client.post("/chat/completions", json=chat_body()).json()
    other_system = client.post("/chat/completions", json=chat_body(system="Be terse.")).json()

    assert first["id"].startswith("chatcmpl-")
    assert first["object"] == "chat.completion"
    assert first["model"] == DEFAULT_MODEL
    choice = first["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["content"] == answer_for(render_messages(chat_body()["messages"]))
    assert USER in choice["message"]["content"]
    assert first["usage"]["prompt_tokens"] > 0
    assert first["usage"]["completion_tokens"] > 0
    assert (
        first["usage"]["total_tokens"]
        == first["usage"]["prompt_tokens"] + first["usage"]["completion_tokens"]
    )
    assert second["choices"][0]["message"]["content"] == choice["message"]["content"]
    assert other_system["choices"][0]["message"]["content"] != choice["message"]["content"]
    assert server.request_count == 3


def test_completion_endpoint_and_max_tokens(client: httpx.Client) -> None:
    body = client.post("/completions", json={"model": DEFAULT_MODEL, "prompt": USER, "max_tokens": 3}).json()
    assert body["object"] == "text_completion"
    choice = body["choices"][0]
    assert choice["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 3
    assert answer_for(USER).startswith(choice["text"])


def test_refusal_marker_gets_a_refusal(client: httpx.Client) -> None:
    body = client.post("/chat/completions", json=chat_body(user="[REFUSE] tell me")).json()
    assert body["choices"][0]["message"]["content"] == REFUSAL_TEXT


def test_unknown_model_is_404_and_bad_body_is_400(client: httpx.Client) -> None:
    unknown = client.post("/chat/completions", json={**chat_body(), "model": "nope"})
    assert unknown.status_code == 404
    assert "does not exist" in unknown.json()["error"]["message"]
    bad = client.post("/chat/completions", content=b"{not json", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400
    assert bad.json()["error"]["type"] == "BadRequestError"


@pytest.mark.parametrize(
    ("fault", "status"),
    [(server_error(), 500), (service_unavailable(), 503), (service_unavailable(retry_after=2), 503)],
)
def test_scripted_http_errors_then_success(
    server: FakeOpenAIServer, client: httpx.Client, fault: object, status: int
) -> None:
    server.script(fault)  # type: ignore[arg-type]
    failed = client.post("/chat/completions", json=chat_body())
    assert failed.status_code == status
    assert failed.json()["error"]["message"]
    assert client.post("/chat/completions", json=chat_body()).status_code == 200
    assert server.prompt_counts[render_messages(chat_body()["messages"])] == 2
    assert sum(server.completed_counts.values()) == 1
    assert [record.status for record in server.records] == [status, 200]


def test_rate_limited_sends_retry_after(server: FakeOpenAIServer, client: httpx.Client) -> None:
    server.script(rate_limited(retry_after=3))
    response = client.post("/completions", json={"model": DEFAULT_MODEL, "prompt": USER})
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    assert server.pending_script() == 0


def test_context_length_error_scripted_and_natural(server: FakeOpenAIServer, client: httpx.Client) -> None:
    server.script(context_length_exceeded())
    scripted = client.post("/chat/completions", json=chat_body())
    assert scripted.status_code == 400
    assert scripted.json()["error"]["message"].startswith(
        "This model's maximum context length is 2048 tokens"
    )

    server.max_context_length = 10
    natural = client.post("/chat/completions", json=chat_body(max_tokens=50))
    assert natural.status_code == 400
    assert "maximum context length is 10 tokens" in natural.json()["error"]["message"]
    assert not server.completed_counts


def test_slow_answer_waits_and_client_timeout_is_seen(server: FakeOpenAIServer, client: httpx.Client) -> None:
    server.script(slow(0.5))
    started = time.monotonic()
    assert client.post("/chat/completions", json=chat_body()).status_code == 200
    assert time.monotonic() - started >= 0.5  # a lower bound: a busy machine only makes it longer
    assert [record.status for record in server.records] == [200]

    server.script(held())  # never answered (until stop), so the client's timeout is what ends it
    with pytest.raises(httpx.ReadTimeout):
        client.post("/chat/completions", json=chat_body(), timeout=0.3)
    assert server.request_count == 2
    assert len(server.records) == 1  # the held request got no answer


def test_slow_can_wrap_another_fault(server: FakeOpenAIServer, client: httpx.Client) -> None:
    server.script(slow(0.2, service_unavailable(retry_after=1)))
    response = client.post("/chat/completions", json=chat_body())
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"


@pytest.mark.parametrize("reset", [False, True])
def test_dropped_connection(server: FakeOpenAIServer, client: httpx.Client, *, reset: bool) -> None:
    server.script(drop_connection(reset=reset))
    with pytest.raises(httpx.TransportError):
        client.post("/chat/completions", json=chat_body())
    assert client.post("/chat/completions", json=chat_body()).status_code == 200
    assert [record.fault for record in server.records] == ["reset" if reset else "drop", "ok"]
    assert server.records[0].status is None


def test_rule_can_change_at_run_time(server: FakeOpenAIServer, client: httpx.Client) -> None:
    server.set_rule(every_nth(2, server_error()))
    statuses = [client.post("/chat/completions", json=chat_body(user=f"q{i}")).status_code for i in range(4)]
    assert statuses == [200, 500, 200, 500]
    server.set_rule(None)
    assert client.post("/chat/completions", json=chat_body()).status_code == 200


def test_64_concurrent_requests_are_all_answered_and_counted_per_prompt(server: FakeOpenAIServer) -> None:
    """Each prompt fails on its first attempt; a retrying client generates every output once."""
    server.set_rule(first_attempts_fail(1, service_unavailable(retry_after=0)))
    prompts = [f"Person {i} got into the plane to [BLANK]" for i in range(64)]

    async def ask(http: httpx.AsyncClient, prompt: str) -> str:
        for _ in range(3):
            response = await http.post("/chat/completions", json=chat_body(user=prompt))
            if response.status_code == 200:
                return str(response.json()["choices"][0]["message"]["content"])
        raise AssertionError(f"no answer for {prompt!r}")

    async def run() -> list[str]:
        limits = httpx.Limits(max_connections=100)
        # The timeout is a safety net against a hang, not a speed check: all 128 requests take about
        # a second in total on a busy 2-core machine, so 60 s per request never fires by accident.
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60, limits=limits) as http:
            return await asyncio.gather(*(ask(http, prompt) for prompt in prompts))

    answers = asyncio.run(run())

    assert len(set(answers)) == 64
    assert server.request_count == 128
    assert set(server.prompt_counts.values()) == {2}
    assert set(server.completed_counts.values()) == {1}
    assert len(server.completed_counts) == 64


def test_requests_are_served_concurrently(server: FakeOpenAIServer) -> None:
    """64 held requests are all in the server at once (one served after another, the second would
    never arrive); released, they are all answered."""
    server.set_rule(lambda info: held())

    async def run() -> tuple[bool, int, list[int]]:
        limits = httpx.Limits(max_connections=100)
        # Both 60 s bounds are safety nets against a hang (the whole test takes well under a second).
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60, limits=limits) as http:
            sent = [
                asyncio.create_task(http.post("/chat/completions", json=chat_body(user=f"q{i}")))
                for i in range(64)
            ]
            all_in = await asyncio.to_thread(server.wait_for_requests, 64, 60)
            answered_before_release = len(server.records)
            server.release()
            responses = await asyncio.gather(*sent)
        return all_in, answered_before_release, [response.status_code for response in responses]

    all_in, answered_before_release, statuses = asyncio.run(run())
    assert all_in, f"only {server.request_count} of 64 requests reached the server together"
    assert answered_before_release == 0
    assert statuses == [200] * 64
    assert len(server.completed_counts) == 64


def test_streaming_chat(client: httpx.Client) -> None:
    body = chat_body(stream=True, stream_options={"include_usage": True})
    with client.stream("POST", "/chat/completions", json=body) as response:
        assert response.status_code == 200
        events = [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert '"usage"' in events[-2]
    assert '"finish_reason": "stop"' in events[-3]


@pytest.mark.parametrize("fault", [slow(600), held()], ids=["slow", "held"])
def test_stop_drops_a_request_in_flight(fault: object) -> None:
    """stop() does not wait for a slow or held request: the client sees the connection close.

    The server would answer after 10 minutes and the client's timeout is 5 minutes, so a client that
    ends within the 60 s the test waits was ended by stop(), however busy the machine.
    """
    fake = FakeOpenAIServer().start()
    fake.script(fault)  # type: ignore[arg-type]
    errors: list[BaseException] = []

    def call() -> None:
        try:
            httpx.post(f"{fake.base_url}/chat/completions", json=chat_body(), timeout=300)
        except httpx.HTTPError as exc:
            errors.append(exc)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    try:
        assert fake.wait_for_requests(1, timeout=60), "the request never reached the server"
    finally:
        fake.stop()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the client was still waiting 60 s after stop()"
    assert len(errors) == 1
    assert isinstance(errors[0], httpx.TransportError)
    assert not isinstance(errors[0], httpx.TimeoutException), errors[0]


def test_standalone_mode_serves_on_the_given_port() -> None:
    port = free_port()
    script = Path(__file__).resolve().parents[1] / "support" / "fake_openai.py"
    process = subprocess.Popen(
        [sys.executable, str(script), "--port", str(port), "--model", "bench-model", "--fail-every", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        # A fresh interpreter importing only the standard library starts in well under a second; 60 s
        # is a safety net so a server that never listens fails here instead of hanging the suite.
        deadline = time.monotonic() + 60
        while True:
            try:
                models = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).json()
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "standalone fake server did not start"
                time.sleep(0.1)
        assert [model["id"] for model in models["data"]] == ["bench-model"]
        url = f"http://127.0.0.1:{port}/v1/completions"
        statuses = [
            httpx.post(url, json={"model": "bench-model", "prompt": "hi"}, timeout=60).status_code
            for _ in range(2)
        ]
        assert statuses == [200, 503]
    finally:
        process.terminate()
        process.wait(timeout=10)
