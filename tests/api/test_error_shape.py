"""Every API answers its errors in one shape: {"detail", "code", "errors": [{"field", "message", ...}]}.

For one representative operation of each API module (library, labelling, exchange, analysis, core auth,
inference endpoints, runs and import): a validation error, a domain error and a 404 or 403, each naming
the field where there is one; then DRF's own refusals (parse error, method not allowed, unsupported media
type, throttled, not authenticated) keep their status and headers; and an oversized upload gets the same
400, with the same message, on every upload route (API and pages).
"""

import html

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from annotations.core.api_errors import validation_errors
from inference.models import GenerationRun
from tests import factories
from tests.conftest import DEMO_PASSWORD

pytestmark = pytest.mark.django_db


def _client(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def _shape(response, status: int, *, code: str | None = None, fields: set | None = None) -> dict:
    """The body, checked to be the one error shape; `fields` must all be named in `errors`."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"detail", "code", "errors"}, body
    assert isinstance(body["detail"], str), body
    assert body["detail"], body
    assert isinstance(body["code"], str), body
    assert body["code"], body
    assert all({"field", "message"} <= set(error) and error["message"] for error in body["errors"]), body
    if code is not None:
        assert body["code"] == code, body
    if fields is not None:
        assert fields <= {error["field"] for error in body["errors"]}, body
    return body


@pytest.fixture
def prompt_set(db):
    """One template x one name."""
    return factories.prompt_set_with_prompts([factories.group_member()], [factories.template(key="tpl")])


@pytest.fixture
def finished_run(prompt_set):
    """A run whose outputs are all done (nothing to retry)."""
    return factories.run_with_outputs(prompt_set, [factories.endpoint()])


def test_library_prompt_set_build(admin_user_role, researcher, prompt_set):
    api = _client(admin_user_role)
    body = _shape(api.post("/api/prompt-sets/", {"name": "x"}, format="json"), 400, code="invalid")
    assert {"templates", "groups"} <= {e["field"] for e in body["errors"]}
    assert body["detail"].startswith("Invalid request: ")
    assert "templates: This field is required." in body["detail"]
    unknown = {"name": "x", "templates": ["nope"], "groups": ["name/muslim"]}
    _shape(api.post("/api/prompt-sets/", unknown, format="json"), 400, fields={"templates"})
    _shape(api.get("/api/prompt-sets/999999/"), 404, code="not_found")
    refused = _client(researcher).post("/api/prompt-sets/", {"name": "x"}, format="json")
    _shape(refused, 403, code="permission_denied")


def test_labelling_campaign_create(researcher, annotator, default_scheme, finished_run):
    api = _client(researcher)
    nested = {"name": "x", "scheme": default_scheme.key, "selection": {"runs": ["a"]}}
    body = _shape(api.post("/api/campaigns/", nested, format="json"), 400, code="invalid")
    assert body["errors"] == [{"field": "selection.runs.0", "message": "A valid integer is required."}]
    assert body["detail"] == "Invalid request: selection.runs.0: A valid integer is required."
    many = {"name": "x", "scheme": default_scheme.key, "selection": {}, "gold": [{"output": 1}, {}]}
    fields = {"gold.0.category", "gold.1.output", "gold.1.category"}
    _shape(api.post("/api/campaigns/", many, format="json"), 400, fields=fields)
    empty = {"name": "x", "scheme": default_scheme.key, "selection": {"runs": [finished_run.pk], "sample": 1}}
    empty["annotators"] = ["nobody"]
    _shape(api.post("/api/campaigns/", empty, format="json"), 400, fields={"annotators"})
    _shape(api.get("/api/campaigns/999999/"), 404, code="not_found")
    refused = _client(annotator).post("/api/campaigns/", nested, format="json")
    _shape(refused, 403, code="permission_denied")


def test_exchange_label_import(researcher, annotator, default_scheme):
    api = _client(researcher)
    _shape(api.post("/api/imports/labels/", {"campaign": "x"}, format="multipart"), 400, fields={"file"})
    rows = SimpleUploadedFile("l.csv", b"prompt,model,output,annotator,label\np,m,o,ann,?\n")
    body = _shape(api.post("/api/imports/labels/", {"campaign": "x", "file": rows}, format="multipart"), 400)
    assert {"row": 2, "field": "label"}.items() <= body["errors"][0].items()
    _shape(_client(annotator).post("/api/imports/labels/", {"campaign": "x"}), 403, code="permission_denied")
    _shape(api.get("/api/exports/labels/?file_format=xlsx"), 400, fields={"file_format"})


def test_analysis_stats(researcher, annotator, default_scheme):
    api = _client(researcher)
    _shape(api.get("/api/stats/disparity/?campaign=x"), 400, fields={"campaign"})
    _shape(api.get("/api/stats/disparity/?campaign=999999"), 404)
    _shape(_client(annotator).get("/api/stats/disparity/?campaign=1"), 403, code="permission_denied")


def test_core_auth_token(researcher, settings):
    settings.AUDIT_LOGIN_FAILURE_LIMIT = 1
    api = _client()
    _shape(api.post("/api/auth/token/", {}, format="json"), 400, fields={"username", "password"})
    wrong = _shape(api.post("/api/auth/token/", {"username": "researcher1", "password": "no"}), 400)
    assert wrong["errors"] == [{"field": None, "message": "Unable to log in with provided credentials."}]
    locked = api.post("/api/auth/token/", {"username": "researcher1", "password": DEMO_PASSWORD})
    assert "Too many failed logins" in _shape(locked, 429, code="throttled")["detail"]
    assert locked["Retry-After"] == "300"
    _shape(_client().get("/api/templates/"), 401, code="not_authenticated")
    bad_token = APIClient(HTTP_AUTHORIZATION="Token not-a-token").get("/api/templates/")
    _shape(bad_token, 401, code="authentication_failed")


def test_inference_endpoints(admin_user_role, researcher):
    api = _client(admin_user_role)
    _shape(api.post("/api/endpoints/", {}, format="json"), 400, fields={"name", "served_model_name"})
    domain = {"name": "x", "served_model_name": "m", "base_urls": ["nope"], "temperature": -1}
    _shape(api.post("/api/endpoints/", domain, format="json"), 400, fields={"base_urls", "temperature"})
    _shape(api.get("/api/endpoints/999999/"), 404, code="not_found")
    _shape(_client(researcher).post("/api/endpoints/", domain, format="json"), 403)


def test_inference_runs(admin_user_role, researcher, finished_run):
    api = _client(admin_user_role)
    _shape(
        api.post("/api/runs/", {"prompt_set": 999999}, format="json"), 400, fields={"prompt_set", "endpoints"}
    )
    retry = _shape(api.post(f"/api/runs/{finished_run.pk}/retry/"), 400)
    assert retry["detail"] == "Nothing to retry: the run has no failed outputs."
    _shape(api.get("/api/runs/999999/"), 404, code="not_found")
    _shape(api.get("/api/runs/999999/progress/"), 404, code="not_found")
    _shape(_client(researcher).post(f"/api/runs/{finished_run.pk}/cancel/"), 403, code="permission_denied")


def test_inference_import(admin_user_role, researcher, prompt_set):
    api = _client(admin_user_role)
    _shape(
        api.post("/api/runs/import/", {"model_name": "m"}, format="multipart"),
        400,
        fields={"prompt_set", "file"},
    )
    rows = SimpleUploadedFile("o.csv", b"prompt_key,output\nmissing,x\n")
    form = {"prompt_set": prompt_set.pk, "model_name": "m", "file": rows}
    body = _shape(api.post("/api/runs/import/", form, format="multipart"), 400)
    assert {"row": 2, "field": "prompt_key"}.items() <= body["errors"][0].items()
    _shape(_client(researcher).post("/api/runs/import/", {}, format="multipart"), 403)
    assert not GenerationRun.objects.filter(kind="imported").exists()


def test_drf_refusals_keep_their_status_and_headers(admin_user_role):
    api = _client(admin_user_role)
    malformed = api.post("/api/campaigns/", "{nope", content_type="application/json")
    _shape(malformed, 400, code="parse_error")
    not_allowed = api.delete("/api/templates/")
    _shape(not_allowed, 405, code="method_not_allowed")
    assert "GET" in not_allowed["Allow"]
    _shape(api.post("/api/campaigns/", "x", content_type="text/plain"), 415, code="unsupported_media_type")


def test_validation_errors_flatten_nested_details():
    detail = {
        "a": ["required"],
        "b": {"c": ["bad"], 2: ["worse"]},
        "d": [{}, {"e": ["no"]}],
        "non_field_errors": ["whole"],
    }
    assert validation_errors(detail) == [
        {"field": "a", "message": "required"},
        {"field": "b.c", "message": "bad"},
        {"field": "b.2", "message": "worse"},
        {"field": "d.1.e", "message": "no"},
        {"field": None, "message": "whole"},
    ]


TOO_BIG = b"prompt_key,output\n" + b"x" * 82  # 100 bytes
SIZE_ERROR = {
    "detail": "The upload was rejected: the file is 100 bytes; the limit is 50 bytes; nothing was saved.",
    "code": "invalid_upload",
    "errors": [
        {
            "row": None,
            "line": None,
            "field": "file",
            "message": "the file is 100 bytes; the limit is 50 bytes",
        }
    ],
}


def test_an_oversized_upload_gets_the_same_400_on_every_route(
    admin_user_role, default_scheme, prompt_set, settings
):
    settings.AUDIT_UPLOAD_MAX_BYTES = 50
    assert len(TOO_BIG) == 100
    api = _client(admin_user_role)
    routes = {
        "/api/templates/import/": {},
        "/api/groups/import/": {},
        "/api/imports/labels/": {"campaign": "big"},
        "/api/runs/import/": {"prompt_set": prompt_set.pk, "model_name": "m"},
    }
    for url, fields in routes.items():
        response = api.post(
            url, {**fields, "file": SimpleUploadedFile("big.csv", TOO_BIG)}, format="multipart"
        )
        assert response.status_code == 400, url
        assert response.json() == SIZE_ERROR, url
    pages = {
        reverse("library_upload_templates"): {"action": "check"},
        reverse("library_upload_groups"): {"action": "check"},
        reverse("label-import"): {"campaign": "big"},
        reverse("inference:run_import"): {"prompt_set": prompt_set.pk, "model_name": "m"},
    }
    client = Client()
    client.force_login(admin_user_role)
    for url, fields in pages.items():
        response = client.post(url, {**fields, "file": SimpleUploadedFile("big.csv", TOO_BIG)})
        assert SIZE_ERROR["errors"][0]["message"] in html.unescape(response.content.decode()), url
    assert not GenerationRun.objects.filter(kind="imported").exists()
