"""Fuzzing: schemathesis generates requests from the project's OpenAPI schema and sends them in-process
with an admin token; no operation may answer with a server error. Bounded (15 examples per operation)
and derandomised, never flaky."""

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from annotations.core.tokens import token_issue
from tests import factories

schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
schema.app = WSGIHandler()


@pytest.fixture
def _keep_test_connection():
    """The WSGI handler closes database connections around each request; the test's transaction needs it."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def admin_token(_keep_test_connection, make_user, default_scheme):
    """An admin's token, with a labelled campaign to export."""
    prompt_set = factories.prompt_set_with_prompts([factories.group_member()], [factories.template()])
    run = factories.run_with_outputs(prompt_set, [factories.endpoint()])
    campaign = factories.campaign_with_items(default_scheme, list(run.outputs.all()))
    factories.label(campaign.items.get(), make_user("annotator"))
    return token_issue(user=make_user("admin", "fuzz-admin"))[1]


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_api_has_no_server_errors(case, admin_token):
    response = case.call(headers={"Authorization": f"Token {admin_token}"})
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code}"
    case.validate_response(response, checks=[not_a_server_error])
