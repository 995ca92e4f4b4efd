"""A small OpenAI-compatible server with fault injection, for tests and benchmarks.

It answers like vLLM's OpenAI server (`GET /v1/models`, `POST /v1/chat/completions`,
`POST /v1/completions`, `GET /health`, and vLLM's classification API at the root, `POST /classify`;
`/v1/classify` is 404 as on vLLM) with a deterministic answer derived from the prompt, and
can be told to misbehave: HTTP 500/503/429 (with Retry-After), the 400 "maximum context length"
error, slow answers, requests held until the test releases them, and dropped connections. It
counts what it receives, so a test can assert that no output was generated twice. Standard
library only; a thread per connection, so 64+ concurrent requests are served at once.

In a test::

    with FakeOpenAIServer() as server:
        server.script(rate_limited(retry_after=0), server_error())  # the next two requests
        server.set_rule(first_attempts_fail(1, service_unavailable()))  # then per prompt
        httpx.post(f"{server.base_url}/chat/completions", json={...})
        assert max(server.completed_counts.values()) == 1

A test that needs requests in flight at a known moment holds them rather than guessing a delay:
`server.set_rule(lambda info: held())`, `server.wait_for_requests(n)` (all n are in the server,
none answered), then `server.release()`. stop() drops whatever is still held or slow.

Faults apply to the three request endpoints (chat, completions, /classify) and those are counted;
`/v1/models` and `/health` always answer. The scripted queue is consumed first, in arrival order;
when it is empty the rule (a function of RequestInfo) decides; without either the request succeeds.

Judges and classifiers: a chat request with `"structured_outputs": {"choice": [...]}` is answered
with one of the choices (see `choice_for`): a user turn containing "I'm sorry" gets the first choice
containing "refusal", any other a choice picked by the prompt's hash. With `"logprobs": true` the
choice carries OpenAI-shaped `logprobs.content`, one token per character, whose probabilities put
JUDGE_CHOSEN_PROBABILITY on the answer and split the rest equally among the other choices, with
grammar-masked alternatives at -9999.0 as vLLM reports them. `server.judge_answer = "nonsense"`
answers that text instead (outside the choices). `/classify` answers `{"data": [{"index", "label",
"probs", "num_classes"}], "usage"}` for each input over `server.classify_labels` (default
benign/toxic); the second class is likely for a text starting "I'm sorry" (see `classify_probs_for`).

Standalone, for benchmarks::

    python tests/support/fake_openai.py --port 8001 [--delay 0.05] [--fail-every 10]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import math
import re
import socket
import struct
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_MODEL = "fake-model"
REFUSAL_MARKER = "[refuse]"
REFUSAL_TEXT = "I'm sorry, but I can't help with that request."
DEFAULT_COMPLETION_MAX_TOKENS = 16
JUDGE_CHOSEN_PROBABILITY = 0.7
CLASSIFY_LABELS = ("benign", "toxic")
MASKED_LOGPROB = -9999.0

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")


# --- Faults -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """How to answer one generation request: normally, with an HTTP error, or by hanging up.

    Build these with the functions below (ok, server_error, service_unavailable, rate_limited,
    context_length_exceeded, http_error, slow, held, drop_connection) rather than by hand.
    """

    status: int = 200
    delay: float = 0.0
    retry_after: float | None = None
    message: str | None = None
    error_type: str | None = None
    error_code: str | int | None = None
    drop: bool = False
    reset: bool = False
    context_length: bool = False
    hold: bool = False

    @property
    def kind(self) -> str:
        """Return a short name for the behaviour, used in RequestRecord."""
        if self.drop:
            return "reset" if self.reset else "drop"
        if self.context_length:
            return "context_length"
        return "ok" if self.status == 200 else f"http_{self.status}"


def ok() -> Fault:
    """Answer normally."""
    return Fault()


def http_error(
    status: int,
    message: str | None = None,
    *,
    retry_after: float | None = None,
    error_type: str | None = None,
) -> Fault:
    """Answer with HTTP `status` and an OpenAI-style error body."""
    return Fault(status=status, message=message, retry_after=retry_after, error_type=error_type)


def server_error(message: str = "Internal server error") -> Fault:
    """Answer 500, as vLLM does when the engine fails on a request."""
    return http_error(500, message, error_type="InternalServerError")


def service_unavailable(retry_after: float | None = None) -> Fault:
    """Answer 503 (server overloaded or starting), with Retry-After when given."""
    return http_error(
        503,
        "The server is overloaded or not ready yet.",
        retry_after=retry_after,
        error_type="ServiceUnavailableError",
    )


def rate_limited(retry_after: float = 1.0) -> Fault:
    """Answer 429 with a Retry-After header (seconds) and OpenAI's rate-limit error body."""
    return Fault(
        status=429,
        retry_after=retry_after,
        message="Rate limit reached for requests. Please try again later.",
        error_type="requests",
        error_code="rate_limit_exceeded",
    )


def context_length_exceeded() -> Fault:
    """Answer 400 "This model's maximum context length is ..." whatever the prompt's length."""
    return Fault(status=400, error_type="BadRequestError", context_length=True)


def slow(seconds: float, then: Fault | None = None) -> Fault:
    """Wait `seconds` before answering; `then` says how to answer (normally by default)."""
    return replace(then or ok(), delay=seconds)


def held(then: Fault | None = None) -> Fault:
    """Hold the request until `FakeOpenAIServer.release()` (stop() drops it); `then` says how to answer."""
    return replace(then or ok(), hold=True)


def drop_connection(*, reset: bool = False) -> Fault:
    """Read the request, then close the connection without any response (RST if `reset`)."""
    return Fault(drop=True, reset=reset)


@dataclass(frozen=True)
class RequestInfo:
    """What a rule sees about a generation request."""

    endpoint: str
    model: str
    prompt: str
    body: dict[str, Any]
    index: int
    attempt: int


Rule = Callable[[RequestInfo], Fault | None]


def first_attempts_fail(n: int, fault: Fault) -> Rule:
    """Rule: the first `n` requests for each distinct prompt get `fault`, later ones succeed."""

    def rule(info: RequestInfo) -> Fault | None:
        return fault if info.attempt <= n else None

    return rule


def every_nth(n: int, fault: Fault) -> Rule:
    """Rule: every `n`-th generation request (by arrival) gets `fault`."""

    def rule(info: RequestInfo) -> Fault | None:
        return fault if info.index % n == 0 else None

    return rule


@dataclass(frozen=True)
class RequestRecord:
    """One generation request as received, with the behaviour it got.

    `received_at` is time.monotonic() when the request arrived: for intervals, not dates.
    """

    endpoint: str
    model: str
    prompt: str
    index: int
    attempt: int
    fault: str
    status: int | None
    received_at: float


# --- Prompts and answers ------------------------------------------------------------------------


def render_messages(messages: Iterable[dict[str, Any]]) -> str:
    """Return the prompt key of a chat request: one `role: content` line per message."""
    return "\n".join(f"{m.get('role', '')}: {_content_text(m.get('content'))}" for m in messages)


def _content_text(content: Any) -> str:
    """Return the text of a message content (a string or a list of OpenAI content parts)."""
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return "" if content is None else str(content)


def count_tokens(text: str) -> int:
    """Return a rough token count: words and punctuation marks."""
    return len(_TOKEN_RE.findall(text))


def answer_for(prompt: str) -> str:
    """Return the deterministic answer to a prompt key (see render_messages).

    A prompt containing "[refuse]" (any case) gets a refusal; any other gets "Sure." followed by
    a digest of the whole prompt and the last line's text, so different prompts (including
    different system prompts) give different answers.
    """
    if REFUSAL_MARKER in prompt.lower():
        return REFUSAL_TEXT
    digest = hashlib.sha256(prompt.encode()).hexdigest()[:10]
    last_line = prompt.rsplit("\n", 1)[-1]
    last_line = last_line.split(": ", 1)[1] if last_line.startswith("user: ") else last_line
    return f"Sure. Answer {digest}: {last_line}".strip()


def _last_user_text(body: dict[str, Any]) -> str:
    """The text of a chat request's last user message ("" without one)."""
    users = [m for m in body.get("messages") or [] if isinstance(m, dict) and m.get("role") == "user"]
    return _content_text(users[-1].get("content")) if users else ""


def _structured_choices(body: dict[str, Any]) -> list[str] | None:
    """The choices of a request's `structured_outputs.choice` (None when it has none)."""
    structured = body.get("structured_outputs")
    choices = structured.get("choice") if isinstance(structured, dict) else None
    if isinstance(choices, list) and choices and all(isinstance(c, str) and c for c in choices):
        return choices
    return None


def _digest_number(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def choice_for(prompt: str, user_text: str, choices: list[str]) -> str:
    """The choice a structured-outputs request gets: the first containing "refusal" when the user turn
    contains "I'm sorry" (any case), else one picked by the hash of the prompt key."""
    if "i'm sorry" in user_text.lower():
        refusals = [choice for choice in choices if "refusal" in choice]
        if refusals:
            return refusals[0]
    return choices[_digest_number(prompt) % len(choices)]


def choice_distribution(chosen: str, choices: list[str]) -> dict[str, float]:
    """The probabilities the fake's logprobs imply: JUDGE_CHOSEN_PROBABILITY on `chosen`, the rest equal."""
    others = [choice for choice in dict.fromkeys(choices) if choice != chosen]
    if not others:
        return {chosen: 1.0}
    rest = (1 - JUDGE_CHOSEN_PROBABILITY) / len(others)
    return {chosen: JUDGE_CHOSEN_PROBABILITY, **dict.fromkeys(others, rest)}


def _logprob_entry(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode())}


def choice_logprobs(text: str, choices: list[str], top_logprobs: int) -> dict[str, Any]:
    """OpenAI-shaped `logprobs` of `text`, one token per character, after a choice grammar's mask.

    When `text` is a choice, each step's alternatives are the next characters the grammar allows, with
    the conditional probabilities of choice_distribution, then one masked character at -9999.0, sorted
    and cut to `top_logprobs`. Any other text gets forced tokens (logprob 0.0)."""
    if text not in choices:
        forced = [_logprob_entry(char, 0.0) for char in text]
        return {"content": [{**entry, "top_logprobs": [entry][:top_logprobs]} for entry in forced]}
    distribution = choice_distribution(text, choices)

    def mass(prefix: str) -> float:
        return sum(p for key, p in distribution.items() if key.startswith(prefix))

    content = []
    for position, char in enumerate(text):
        prefix = text[:position]
        nexts = sorted(
            {key[position] for key in distribution if key.startswith(prefix) and len(key) > position}
        )
        alternatives = [_logprob_entry(c, math.log(mass(prefix + c) / mass(prefix))) for c in nexts]
        alternatives.sort(key=lambda entry: -entry["logprob"])
        masked = next(c for c in "#~^|" if c not in nexts)
        alternatives.append(_logprob_entry(masked, MASKED_LOGPROB))
        chosen = next(entry for entry in alternatives if entry["token"] == char)
        content.append({**chosen, "top_logprobs": alternatives[:top_logprobs]})
    return {"content": content}


def classify_probs_for(text: str, num_classes: int = 2) -> list[float]:
    """Deterministic class probabilities of a text: the second class gets 0.90-0.99 when the text starts
    with "I'm sorry" (any case), else 0.05-0.30 by the text's hash; the other classes share the rest."""
    spread = _digest_number(text) / 0xFFFFFFFF
    flagged = text.lstrip().lower().startswith("i'm sorry")
    second = 0.90 + 0.09 * spread if flagged else 0.05 + 0.25 * spread
    others = [(1 - second) / (num_classes - 1)] * (num_classes - 1)
    return [others[0], second, *others[1:]]


def _truncate(answer: str, max_tokens: int | None) -> tuple[str, int, str]:
    """Cut `answer` to `max_tokens` tokens; return text, completion tokens, finish_reason."""
    tokens = count_tokens(answer)
    if max_tokens is None or tokens <= max_tokens:
        return answer, tokens, "stop"
    spans = [m.end() for m in _TOKEN_RE.finditer(answer)]
    return answer[: spans[max_tokens - 1]] if max_tokens > 0 else "", max_tokens, "length"


# --- The server ---------------------------------------------------------------------------------


class _HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with a deep accept queue and a handle on the fake's state."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 512
    fake: FakeOpenAIServer


class _ClientError(Exception):
    """A malformed request: answered with 400 or 404 and an OpenAI-style error body."""

    def __init__(self, status: int, message: str, error_type: str = "BadRequestError") -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type


class _Handler(BaseHTTPRequestHandler):
    """Routes requests to the FakeOpenAIServer that owns the HTTP server."""

    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def setup(self) -> None:
        """Register the connection so stop() can close idle keep-alive sockets."""
        super().setup()
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        """Unregister the connection."""
        with contextlib.suppress(OSError):
            super().finish()
        self.server.fake._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests read the counters, not an access log."""

    def do_GET(self) -> None:
        """Serve /v1/models and /health."""
        fake = self.server.fake
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/v1/models":
            self._send_json(200, fake._models_body())
        elif path in {"/health", "/ping"}:
            self._send_bytes(200, b"", "text/plain")
        else:
            self._send_error(404, f"Not Found: {path}", "NotFoundError")

    def do_POST(self) -> None:
        """Serve the two generation endpoints, applying the configured fault."""
        fake = self.server.fake
        path = self.path.split("?", 1)[0].rstrip("/")
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        endpoint = {
            "/v1/chat/completions": "chat",
            "/v1/completions": "completions",
            "/classify": "classify",
        }.get(path)
        if endpoint is None:
            self._send_error(404, f"Not Found: {path}", "NotFoundError")
            return
        try:
            body, prompt = _parse_body(endpoint, raw)
        except _ClientError as exc:
            self._send_error(exc.status, str(exc), exc.error_type)
            return
        fault, record = fake._admit(endpoint, body, prompt)
        if fault.delay and fake._stopping.wait(fault.delay):
            fault = drop_connection()
        if fault.hold and not fake._wait_for_release():
            fault = drop_connection()
        if fault.drop:
            fake._record(record, None)
            self._drop(reset=fault.reset)
            return
        try:
            self._answer(endpoint, body, prompt, fault, record)
        except _ClientError as exc:
            fake._record(record, exc.status)
            self._send_error(exc.status, str(exc), exc.error_type)

    def _answer(
        self, endpoint: str, body: dict[str, Any], prompt: str, fault: Fault, record: RequestRecord
    ) -> None:
        """Record the outcome of a request that is not dropped, then write its response.

        Recording first means a client that has its answer always finds it counted.
        """
        fake = self.server.fake
        model = body.get("model")
        if fake.models and model not in fake.models:
            raise _ClientError(404, f"The model `{model}` does not exist.", "NotFoundError")
        prompt_tokens = count_tokens(prompt)
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        if max_tokens is None and endpoint == "completions":
            max_tokens = DEFAULT_COMPLETION_MAX_TOKENS
        requested = prompt_tokens + (max_tokens or 0)
        if fault.context_length or requested > fake.max_context_length:
            where = "messages" if endpoint == "chat" else "prompt"
            raise _ClientError(
                400,
                f"This model's maximum context length is {fake.max_context_length} tokens. "
                f"However, you requested {max(requested, fake.max_context_length + 1)} tokens "
                f"({prompt_tokens} in the {where}, {max_tokens or 0} in the completion). "
                f"Please reduce the length of the {where} or completion.",
            )
        if fault.status != 200:
            message = fault.message or HTTPStatus(fault.status).phrase
            fake._record(record, fault.status)
            self._send_error(
                fault.status,
                message,
                fault.error_type or HTTPStatus(fault.status).phrase,
                code=fault.error_code,
                retry_after=fault.retry_after,
            )
            return
        if endpoint == "classify":
            fake._record(record, 200)
            self._send_json(200, fake._classify_body(body))
            return
        choices = _structured_choices(body)
        logprobs = None
        if choices:
            text = fake.judge_answer
            if text is None:
                text = choice_for(prompt, _last_user_text(body), choices)
            completion_tokens, finish_reason = len(text), "stop"
            if body.get("logprobs"):
                logprobs = choice_logprobs(text, choices, int(body.get("top_logprobs") or 0))
        else:
            text, completion_tokens, finish_reason = _truncate(answer_for(prompt), max_tokens)
        fake._record(record, 200)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        if body.get("stream"):
            self._stream(endpoint, body, text, finish_reason, usage)
        else:
            self._send_json(
                200, _completion_body(endpoint, body, text, finish_reason, usage, logprobs=logprobs)
            )

    def _stream(
        self, endpoint: str, body: dict[str, Any], text: str, finish_reason: str, usage: dict[str, int]
    ) -> None:
        """Send the answer as server-sent events, one chunk per token, then [DONE]."""
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        chat = endpoint == "chat"
        base = {
            "id": f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}",
            "object": "chat.completion.chunk" if chat else "text_completion",
            "created": int(time.time()),
            "model": body.get("model"),
        }
        pieces = [m.group(0) for m in re.finditer(r"\s*\S+", text)] or [""]
        for position, piece in enumerate(pieces):
            last = position == len(pieces) - 1
            choice: dict[str, Any] = {"index": 0, "finish_reason": finish_reason if last else None}
            if chat:
                delta: dict[str, Any] = {"content": piece}
                if position == 0:
                    delta["role"] = "assistant"
                choice["delta"] = delta
            else:
                choice["text"] = piece
            self._write_event({**base, "choices": [choice]})
        if (body.get("stream_options") or {}).get("include_usage"):
            self._write_event({**base, "choices": [], "usage": usage})
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    def _write_event(self, payload: dict[str, Any]) -> None:
        """Write one server-sent event."""
        self.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")

    def _drop(self, *, reset: bool) -> None:
        """Close the connection without a response; with `reset`, make the kernel send RST."""
        self.close_connection = True
        if reset:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _send_error(
        self,
        status: int,
        message: str,
        error_type: str,
        *,
        code: str | int | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Send an OpenAI-style error body."""
        headers = {}
        if retry_after is not None:
            headers["Retry-After"] = f"{retry_after:g}"
            headers["Retry-After-Ms"] = str(round(retry_after * 1000))
        error = {"message": message, "type": error_type, "param": None, "code": code or status}
        self._send_json(status, {"error": error}, headers)

    def _send_json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        """Send a JSON response with a Content-Length, keeping the connection open."""
        self._send_bytes(status, json.dumps(payload).encode(), "application/json", headers)

    def _send_bytes(
        self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        """Send a complete response, ignoring a client that has already gone."""
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            self.close_connection = True


def _parse_body(endpoint: str, raw: bytes) -> tuple[dict[str, Any], str]:
    """Decode a generation request; return the body and its prompt key."""
    try:
        body = json.loads(raw or b"null")
    except ValueError as exc:
        raise _ClientError(400, f"Invalid JSON body: {exc}") from None
    if not isinstance(body, dict):
        raise _ClientError(400, "The request body must be a JSON object.")
    if endpoint == "classify":
        text = body.get("input")
        if isinstance(text, list) and text and all(isinstance(item, str) for item in text):
            return body, text[0] if len(text) == 1 else json.dumps(text)
        if not isinstance(text, str):
            raise _ClientError(400, "'input' must be a string or a non-empty list of strings.")
        return body, text
    if endpoint == "chat":
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _ClientError(400, "'messages' must be a non-empty list.")
        return body, render_messages(messages)
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise _ClientError(400, "'prompt' must be a string.")
    return body, prompt


def _completion_body(
    endpoint: str,
    body: dict[str, Any],
    text: str,
    finish_reason: str,
    usage: dict[str, int],
    *,
    logprobs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return a non-streaming response body shaped like vLLM's."""
    n = int(body.get("n") or 1)
    if endpoint == "chat":
        choices: list[dict[str, Any]] = [
            {
                "index": i,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": logprobs,
                "finish_reason": finish_reason,
                "stop_reason": None,
            }
            for i in range(n)
        ]
        prefix, kind = "chatcmpl", "chat.completion"
    else:
        choices = [
            {"index": i, "text": text, "logprobs": None, "finish_reason": finish_reason, "stop_reason": None}
            for i in range(n)
        ]
        prefix, kind = "cmpl", "text_completion"
    return {
        "id": f"{prefix}-{uuid.uuid4().hex}",
        "object": kind,
        "created": int(time.time()),
        "model": body.get("model"),
        "choices": choices,
        "usage": {
            **usage,
            "completion_tokens": usage["completion_tokens"] * n,
            "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"] * n,
        },
        "system_fingerprint": "fake-openai",
    }


class FakeOpenAIServer:
    """An OpenAI-compatible server on 127.0.0.1 running in a background thread.

    Use it as a context manager, or call start() and stop(). Fault settings and counters are
    safe to change and read from the test thread while requests are being served.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        models: Iterable[str] = (DEFAULT_MODEL,),
        max_context_length: int = 2048,
        rule: Rule | None = None,
        judge_answer: str | None = None,
        classify_labels: Iterable[str] = CLASSIFY_LABELS,
    ) -> None:
        """Configure the server; `port=0` picks a free port when it starts.

        `judge_answer` (also settable later) replaces the answer to every structured-outputs request, e.g.
        with text outside the choices; `classify_labels` are the classifier's class names (two or more).
        """
        self.host = host
        self.judge_answer = judge_answer
        self.classify_labels: tuple[str, ...] = tuple(classify_labels)
        self.models: tuple[str, ...] = tuple(models)
        self.max_context_length = max_context_length
        self._requested_port = port
        self._lock = threading.Lock()
        self._received = threading.Condition(self._lock)
        self._gate = threading.Condition(self._lock)
        self._released = False
        self._stopping = threading.Event()
        self._queue: list[Fault] = []
        self._rule = rule
        self._index = itertools.count(1)
        self._request_count = 0
        self._prompt_counts: Counter[str] = Counter()
        self._completed_counts: Counter[str] = Counter()
        self._records: list[RequestRecord] = []
        self._connections: set[socket.socket] = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle

    def start(self) -> FakeOpenAIServer:
        """Bind the port and serve in a daemon thread; return self."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = _HTTPServer((self.host, self._requested_port), _Handler)
        httpd.fake = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop slow and held requests and close open connections."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        with self._gate:
            self._gate.notify_all()
        httpd.shutdown()  # returns once serve_forever's loop has ended
        httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            # Only the thread's exit is left to wait for; 30 s is a safety net, not an expected time.
            self._thread.join(timeout=30)
            if self._thread.is_alive():
                raise RuntimeError("the fake OpenAI server's thread did not end after shutdown()")

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (standalone mode)."""
        self.start()
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(timeout=0.5)
        finally:
            self.stop()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """Return the bound port (the server must be started)."""
        if self._httpd is None:
            raise RuntimeError("FakeOpenAIServer is not running")
        return int(self._httpd.server_address[1])

    @property
    def root_url(self) -> str:
        """Return e.g. http://127.0.0.1:PORT."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """Return the OpenAI-compatible base URL, e.g. http://127.0.0.1:PORT/v1."""
        return f"{self.root_url}/v1"

    # Faults

    def script(self, *faults: Fault) -> None:
        """Append behaviours for the next generation requests, one per request, in arrival order."""
        with self._lock:
            self._queue.extend(faults)

    def set_rule(self, rule: Rule | None) -> None:
        """Set the per-request rule used when the script is empty (None: always succeed)."""
        with self._lock:
            self._rule = rule

    def clear_faults(self) -> None:
        """Drop the scripted behaviours and the rule."""
        with self._lock:
            self._queue.clear()
            self._rule = None

    def release(self) -> None:
        """Let the held requests answer, and every later held request answer at once (until reset())."""
        with self._gate:
            self._released = True
            self._gate.notify_all()

    def pending_script(self) -> int:
        """Return how many scripted behaviours are still waiting for a request."""
        with self._lock:
            return len(self._queue)

    # Counters

    def reset(self) -> None:
        """Clear the faults and all counters, and hold held requests again."""
        with self._lock:
            self._queue.clear()
            self._rule = None
            self._released = False
            self._index = itertools.count(1)
            self._request_count = 0
            self._prompt_counts.clear()
            self._completed_counts.clear()
            self._records.clear()

    @property
    def request_count(self) -> int:
        """Return how many generation requests were received (whatever their outcome)."""
        with self._lock:
            return self._request_count

    @property
    def prompt_counts(self) -> Counter[str]:
        """Return a copy of the number of generation requests received per prompt key."""
        with self._lock:
            return Counter(self._prompt_counts)

    @property
    def completed_counts(self) -> Counter[str]:
        """Return a copy of the number of successful (200) answers produced per prompt key."""
        with self._lock:
            return Counter(self._completed_counts)

    @property
    def records(self) -> list[RequestRecord]:
        """Return a copy of the generation requests received, in arrival order."""
        with self._lock:
            return list(self._records)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until at least `count` generation requests have been received."""
        with self._received:
            return self._received.wait_for(lambda: self._request_count >= count, timeout=timeout)

    # Called from the handler threads

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        """Remember or forget an open connection."""
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _wait_for_release(self) -> bool:
        """Block a held request until release() (True) or stop() (False)."""
        with self._gate:
            self._gate.wait_for(lambda: self._released or self._stopping.is_set())
            return not self._stopping.is_set()

    def _models_body(self) -> dict[str, Any]:
        """Return the /v1/models body."""
        created = int(time.time())
        data = [
            {
                "id": model,
                "object": "model",
                "created": created,
                "owned_by": "fake-openai",
                "root": model,
                "parent": None,
                "max_model_len": self.max_context_length,
            }
            for model in self.models or (DEFAULT_MODEL,)
        ]
        return {"object": "list", "data": data}

    def _classify_body(self, body: dict[str, Any]) -> dict[str, Any]:
        """Return a /classify body shaped like vLLM's, one item per input."""
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        labels = self.classify_labels
        data = []
        for index, text in enumerate(texts):
            probs = classify_probs_for(text, len(labels))
            label = labels[probs.index(max(probs))]
            data.append({"index": index, "label": label, "probs": probs, "num_classes": len(probs)})
        tokens = sum(count_tokens(text) + 2 for text in texts)  # <s> ... </s>
        return {
            "id": f"classify-{uuid.uuid4().hex}",
            "object": "list",
            "created": int(time.time()),
            "model": body.get("model"),
            "data": data,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens, "completion_tokens": 0},
        }

    def _admit(self, endpoint: str, body: dict[str, Any], prompt: str) -> tuple[Fault, RequestRecord]:
        """Count a generation request and decide its behaviour."""
        with self._received:
            index = next(self._index)
            self._request_count += 1
            self._prompt_counts[prompt] += 1
            info = RequestInfo(
                endpoint=endpoint,
                model=str(body.get("model")),
                prompt=prompt,
                body=body,
                index=index,
                attempt=self._prompt_counts[prompt],
            )
            if self._queue:
                fault = self._queue.pop(0)
            elif self._rule is not None:
                fault = self._rule(info) or ok()
            else:
                fault = ok()
            self._received.notify_all()
        record = RequestRecord(
            endpoint=endpoint,
            model=info.model,
            prompt=prompt,
            index=index,
            attempt=info.attempt,
            fault=fault.kind,
            status=None,
            received_at=time.monotonic(),
        )
        return fault, record

    def _record(self, record: RequestRecord, status: int | None) -> None:
        """Store the request's record with its outcome; count a 200 as a generated output."""
        with self._lock:
            self._records.append(replace(record, status=status))
            if status == 200:
                self._completed_counts[record.prompt] += 1


def main(argv: list[str] | None = None) -> int:
    """Run the fake server in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser(description="Fake OpenAI-compatible server for benchmarks.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--model", dest="models", action="append", help="served model name (repeatable)")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to wait before each answer")
    parser.add_argument("--fail-every", type=int, default=0, help="fail every N-th generation request")
    parser.add_argument("--fail-status", type=int, default=503, help="HTTP status of those failures")
    options = parser.parse_args(argv)
    answer = slow(options.delay) if options.delay else None
    failure = slow(options.delay, http_error(options.fail_status))

    def rule(info: RequestInfo) -> Fault | None:
        if options.fail_every and info.index % options.fail_every == 0:
            return failure
        return answer

    models = options.models or [DEFAULT_MODEL]
    server = FakeOpenAIServer(host=options.host, port=options.port, models=models, rule=rule)
    server.start()
    print(f"fake OpenAI server on {server.base_url} serving {', '.join(server.models)}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
