"""python manage.py endpoint_add NAME --url URL --served-model-name M ...: register (or update) a model."""

from django.core.management.base import BaseCommand, CommandError

from annotations.core.exceptions import AuditError
from inference.models import ModelEndpoint
from inference.services.endpoints import endpoint_check, endpoint_create, endpoint_update


class Command(BaseCommand):
    help = "Register a model endpoint (or update the one with that name); --check tests the connection."

    def add_arguments(self, parser):
        parser.add_argument("name", help="Display name, e.g. Llama-2-7b-chat.")
        parser.add_argument(
            "--url",
            action="append",
            default=[],
            help="Replica base URL, e.g. http://gpu1:8000/v1 (repeatable).",
        )
        parser.add_argument("--served-model-name", help="The `model` vLLM expects (default: the name).")
        parser.add_argument(
            "--mode", choices=ModelEndpoint.ApiMode.values, help="chat or completion (default chat)."
        )
        parser.add_argument("--system-prompt")
        parser.add_argument("--temperature", type=float)
        parser.add_argument("--top-p", type=float)
        parser.add_argument("--max-tokens", type=int)
        parser.add_argument("--seed", type=int)
        parser.add_argument("--stop", action="append", help="Stop string (repeatable).")
        parser.add_argument("--concurrency", type=int, help="Requests in flight per worker.")
        parser.add_argument("--timeout", type=float, help="Seconds before one request times out.")
        parser.add_argument("--check", action="store_true", help="Then call /v1/models on every replica.")

    def handle(self, *args, **opts):
        given = {
            "base_urls": opts["url"] or None,
            "served_model_name": opts["served_model_name"],
            "api_mode": opts["mode"],
            "system_prompt": opts["system_prompt"],
            "temperature": opts["temperature"],
            "top_p": opts["top_p"],
            "max_tokens": opts["max_tokens"],
            "seed": opts["seed"],
            "stop": opts["stop"],
            "concurrency_limit": opts["concurrency"],
            "request_timeout": opts["timeout"],
        }
        values = {key: value for key, value in given.items() if value is not None}
        existing = ModelEndpoint.objects.filter(name=opts["name"]).first()
        try:
            if existing:
                endpoint = endpoint_update(endpoint=existing, actor=None, **values)
            else:
                values.setdefault("served_model_name", opts["name"])
                endpoint = endpoint_create(actor=None, name=opts["name"], **values)
        except AuditError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            f"{'Updated' if existing else 'Registered'} model endpoint {endpoint.name} (id {endpoint.pk})."
        )
        if opts["check"]:
            result = endpoint_check(endpoint=endpoint)
            for replica in result["replicas"]:
                said = ", ".join(replica.get("model_ids", [])) or "-"
                state = "ok" if replica["ok"] else "FAILED"
                self.stdout.write(f"  {replica['url']}: {state}; serves {said}. {replica['error']}")
            if not result["ok"]:
                raise CommandError("The connection test failed.")
