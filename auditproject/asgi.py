"""ASGI entry point."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "auditproject.settings")
application = get_asgi_application()

from auditproject.warmup import warm_up  # noqa: E402 (needs the app registry ready)

warm_up()  # the first request answers as fast as the rest
