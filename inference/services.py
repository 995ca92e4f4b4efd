"""Writes of the inference app: endpoints, runs, outputs."""

from django.utils import timezone

from inference.client import EndpointError, models_list
from inference.models import ModelEndpoint


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
    }
    ModelEndpoint.objects.filter(pk=endpoint.pk).update(last_check=result)
    endpoint.last_check = result
    return result
