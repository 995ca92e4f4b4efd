"""The OpenAPI 3 schema generates without warnings, validates, and its docs are served without a CDN."""

import pytest
import yaml
from django.core.management import call_command
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_schema_validates_without_warnings(tmp_path):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    schema = yaml.safe_load(target.read_text())
    assert schema["openapi"].startswith("3.")
    assert {"/api/auth/token/", "/api/exports/{kind}/", "/api/imports/labels/"} <= set(schema["paths"])
    assert {"tokenAuth", "cookieAuth"} <= set(schema["components"]["securitySchemes"])


def test_schema_and_docs_need_a_login(client, annotator):
    anonymous = client.get(reverse("api-schema"))
    assert anonymous.status_code == 401  # not authenticated (token auth answers first: WWW-Authenticate)
    assert anonymous["WWW-Authenticate"] == "Token"
    client.force_login(annotator)
    assert client.get(reverse("api-schema")).status_code == 200


def test_docs_page_uses_local_assets(client, researcher):
    client.force_login(researcher)
    html = client.get(reverse("api-docs")).content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower()
    assert "/static/drf_spectacular_sidecar/" in html


def test_token_pagination_and_filter_backends_are_configured(settings):
    framework = settings.REST_FRAMEWORK
    first = framework["DEFAULT_AUTHENTICATION_CLASSES"][0]
    assert first == "annotations.core.tokens.HashedTokenAuthentication"
    assert (
        "rest_framework.authentication.SessionAuthentication" in framework["DEFAULT_AUTHENTICATION_CLASSES"]
    )
    assert framework["DEFAULT_PAGINATION_CLASS"].endswith("PageNumberPagination")
    assert framework["DEFAULT_FILTER_BACKENDS"] == ["django_filters.rest_framework.DjangoFilterBackend"]
