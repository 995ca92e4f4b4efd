"""Registering model endpoints and testing the connection to them."""

from typing import Any
from urllib.parse import urlsplit

from django.db import transaction
from django.utils import timezone

from annotations.core.audit import audit_event_record
from annotations.core.exceptions import AuditError
from inference.client import EndpointError, models_list
from inference.models import ModelEndpoint

ENDPOINT_FIELDS = (
    "name",
    "base_urls",
    "served_model_name",
    "api_mode",
    "system_prompt",
    "temperature",
    "top_p",
    "max_tokens",
    "seed",
    "stop",
    "concurrency_limit",
    "request_timeout",
    "is_active",
)
MAX_STOP_STRINGS = 16


_NUMBER_CHECKS = (
    ("temperature", lambda v: v >= 0, "must be 0 or more"),
    ("top_p", lambda v: 0 < v <= 1, "must be above 0 and at most 1"),
    ("max_tokens", lambda v: v >= 1 and v == int(v), "must be a whole number of at least 1"),
    ("concurrency_limit", lambda v: 1 <= v <= 4096 and v == int(v), "must be a whole number, 1 to 4096"),
    ("request_timeout", lambda v: v > 0, "must be more than 0 seconds"),
)


def _url_errors(urls: object) -> list[str]:
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        return ["Give the base URLs as a list of strings."]
    messages = []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            messages.append(f"{url!r} is not an http(s) URL such as http://gpu1:8000/v1.")
    if len(set(urls)) != len(urls):
        messages.append("A base URL is listed twice.")
    return messages


def _sampling_errors(values: dict[str, Any]) -> list[tuple[str, str]]:
    errors = []
    for field, ok, message in _NUMBER_CHECKS:
        value = values.get(field)
        if not isinstance(value, int | float) or isinstance(value, bool) or not ok(value):
            errors.append((field, f"{field} {message} (got {value!r})."))
    seed = values.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or abs(seed) >= 2**62):
        errors.append(("seed", f"The seed must be a whole number or empty (got {seed!r})."))
    stop = values.get("stop")
    if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
        errors.append(("stop", "Give the stop strings as a list of non-empty strings."))
    elif len(stop) > MAX_STOP_STRINGS:
        errors.append(("stop", f"At most {MAX_STOP_STRINGS} stop strings."))
    return errors


def _endpoint_errors(values: dict[str, Any], *, instance: ModelEndpoint | None) -> list[dict]:
    """Every problem with the endpoint's settings, one {"field", "message"} per problem."""
    found: list[tuple[str, str]] = []
    name = str(values.get("name") or "").strip()
    if not name:
        found.append(("name", "The display name is empty."))
    elif ModelEndpoint.objects.filter(name=name).exclude(pk=getattr(instance, "pk", None)).exists():
        found.append(("name", f"A model endpoint named {name!r} already exists."))
    if not str(values.get("served_model_name") or "").strip():
        found.append(
            ("served_model_name", "The served model name (the `model` sent to the server) is empty.")
        )
    found += [("base_urls", message) for message in _url_errors(values.get("base_urls"))]
    if values.get("api_mode") not in ModelEndpoint.ApiMode.values:
        found.append(("api_mode", f"Choose one of: {', '.join(ModelEndpoint.ApiMode.values)}."))
    found += _sampling_errors(values)
    return [{"field": field, "message": message} for field, message in found]


def _endpoint_save(*, endpoint: ModelEndpoint, values: dict[str, Any], actor, action: str) -> ModelEndpoint:
    errors = _endpoint_errors(values, instance=endpoint if endpoint.pk else None)
    if errors:
        raise AuditError(
            "The model endpoint is not valid: " + " ".join(e["message"] for e in errors), errors=errors
        )
    for field in ENDPOINT_FIELDS:
        setattr(endpoint, field, values[field])
    endpoint.name = endpoint.name.strip()
    endpoint.served_model_name = endpoint.served_model_name.strip()
    endpoint.save()
    audit_event_record(actor=actor, action=action, target=endpoint, details={"name": endpoint.name})
    return endpoint


@transaction.atomic
def endpoint_create(*, actor, **values: Any) -> ModelEndpoint:
    """Register a model endpoint; unspecified settings take the model's defaults."""
    unknown = set(values) - set(ENDPOINT_FIELDS)
    if unknown:
        raise AuditError(f"Unknown endpoint settings: {', '.join(sorted(unknown))}.")
    endpoint = ModelEndpoint()
    merged = {field: values.get(field, getattr(endpoint, field)) for field in ENDPOINT_FIELDS}
    return _endpoint_save(endpoint=endpoint, values=merged, actor=actor, action="endpoint.create")


@transaction.atomic
def endpoint_update(*, endpoint: ModelEndpoint, actor, **values: Any) -> ModelEndpoint:
    """Change some settings of an endpoint (outputs keep the settings they were generated with)."""
    unknown = set(values) - set(ENDPOINT_FIELDS)
    if unknown:
        raise AuditError(f"Unknown endpoint settings: {', '.join(sorted(unknown))}.")
    merged = {field: values.get(field, getattr(endpoint, field)) for field in ENDPOINT_FIELDS}
    return _endpoint_save(endpoint=endpoint, values=merged, actor=actor, action="endpoint.update")


def endpoint_check(*, endpoint: ModelEndpoint) -> dict:
    """Call /v1/models on every replica of `endpoint`, store and return what each said."""
    replicas = []
    for url in endpoint.base_urls:
        try:
            found = models_list(url, timeout=min(endpoint.request_timeout, 10.0))
        except EndpointError as exc:
            replicas.append({"url": url, "ok": False, "error": exc.message})
            continue
        serves = endpoint.served_model_name in found.model_ids
        replicas.append(
            {
                "url": url,
                "ok": serves,
                "model_ids": list(found.model_ids),
                "max_model_len": found.max_model_len,
                "error": "" if serves else f"the server does not serve {endpoint.served_model_name!r}",
            }
        )
    result = {
        "checked_at": timezone.now().isoformat(),
        "ok": bool(replicas) and all(r["ok"] for r in replicas),
        "replicas": replicas,
        "error": "" if replicas else "The endpoint has no base URL.",
    }
    ModelEndpoint.objects.filter(pk=endpoint.pk).update(last_check=result)
    endpoint.last_check = result
    return result
