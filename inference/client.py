"""The only code that speaks HTTP to vLLM's OpenAI-compatible server."""

from dataclasses import dataclass

import httpx


class EndpointError(Exception):
    """The server could not be reached or answered with an error; `message` says which."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retryable = retryable


@dataclass(frozen=True)
class ServerModels:
    """What GET /v1/models answered: the model ids the server serves."""

    base_url: str
    model_ids: tuple[str, ...]
    max_model_len: int | None


def models_list(base_url: str, *, timeout: float = 10.0, api_key: str | None = None) -> ServerModels:
    """Call GET {base_url}/models and return the served model ids (raises EndpointError)."""
    url = base_url.rstrip("/") + "/models"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = httpx.get(url, timeout=timeout, headers=headers)
    except httpx.HTTPError as exc:
        raise EndpointError(f"{url}: {type(exc).__name__}: {exc}", retryable=True) from None
    if response.status_code != 200:
        raise EndpointError(
            f"{url}: HTTP {response.status_code}: {response.text[:500]}",
            status=response.status_code,
            retryable=response.status_code == 429 or response.status_code >= 500,
        )
    try:
        data = response.json()["data"]
        ids = tuple(str(item["id"]) for item in data)
        lengths = [item.get("max_model_len") for item in data if item.get("max_model_len")]
    except (ValueError, KeyError, TypeError):
        raise EndpointError(
            f"{url}: not an OpenAI-compatible /models answer: {response.text[:200]}"
        ) from None
    return ServerModels(base_url=base_url, model_ids=ids, max_model_len=lengths[0] if lengths else None)
