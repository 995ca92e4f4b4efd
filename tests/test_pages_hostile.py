"""Every HTML page of the project, with hostile text in every user- or model-provided field: the text is
always escaped (or sanitised, for markdown), and every POST form carries the CSRF token. Generic: new pages
are covered without editing this file."""

import pytest
from django.apps import apps
from django.db import models
from django.test import Client

from tests.access import access_world, project_routes, route_policy, route_urls

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
MARKERS = ("<script>alert(", "<img src=x onerror")


def _make_everything_hostile() -> int:
    """Overwrite every free-text field of every row (keys and choices kept) with HOSTILE; returns fields."""
    changed = 0
    for label in ("annotations", "inference"):
        for model in apps.get_app_config(label).get_models():
            fields = [
                f.name
                for f in model._meta.fields
                if isinstance(f, models.CharField | models.TextField)
                and not isinstance(f, models.SlugField)
                and not f.choices
                and (f.max_length is None or f.max_length >= len(HOSTILE) + 10)
            ]
            if fields:
                rows = model._base_manager.all()
                for row in rows:  # per row: unique fields get a distinct value
                    values = dict.fromkeys(fields, f"{HOSTILE}{row.pk}")
                    model._base_manager.filter(pk=row.pk).update(**values)
                changed += len(fields)
    return changed


@pytest.mark.parametrize("role", ["admin", "annotator", "annotator-with-dashboards"])
def test_every_page_escapes_hostile_text_and_protects_forms(role, make_user, default_scheme):
    users = access_world(make_user)
    users[role].__class__.objects.filter(pk=users[role].pk).update(first_name=HOSTILE)
    assert _make_everything_hostile() > 20
    client = Client(raise_request_exception=False)
    client.force_login(users[role])
    problems, pages = [], 0
    for route in project_routes():
        if route.namespace == "admin" or route_policy(route) is None:
            continue
        for url, _owner in route_urls(route):
            response = client.get(url)
            if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
                continue
            pages += 1
            html = response.content.decode()
            problems += [f"{url}: unescaped {marker!r}" for marker in MARKERS if marker in html]
            lowered = html.lower()
            if lowered.count('method="post"') > lowered.count("csrfmiddlewaretoken"):
                problems.append(f"{url}: a POST form without the CSRF token")
    assert pages >= (15 if role == "admin" else 2), pages
    assert not problems, "\n".join(problems)
