"""A task goes through a real Celery worker process consuming from Redis and writing to PostgreSQL."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import transaction

from inference.models import ModelEndpoint
from inference.tasks import check_endpoint

pytestmark = pytest.mark.celery_worker


class _ModelsHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(
            {"object": "list", "data": [{"id": "tiny", "object": "model", "max_model_len": 512}]}
        )
        self.send_response(200 if self.path == "/v1/models" else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def models_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ModelsHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_endpoint_check_runs_in_a_worker_process(celery_worker_process, models_server):
    good = ModelEndpoint.objects.create(name="good", base_urls=[models_server], served_model_name="tiny")
    bad = ModelEndpoint.objects.create(
        name="bad", base_urls=["http://127.0.0.1:9/v1"], served_model_name="tiny"
    )
    with transaction.atomic():  # enqueue after commit, as the services do
        for endpoint in (good, bad):
            transaction.on_commit(lambda pk=endpoint.pk: check_endpoint.delay(pk))

    def both_checked() -> bool:
        return ModelEndpoint.objects.exclude(last_check={}).count() == 2

    celery_worker_process.wait_for(both_checked, timeout=60, what="both endpoint checks")
    good.refresh_from_db()
    bad.refresh_from_db()
    assert good.last_check["ok"] is True
    assert good.last_check["replicas"][0]["model_ids"] == ["tiny"]
    assert bad.last_check["ok"] is False
    assert "ConnectError" in bad.last_check["replicas"][0]["error"]
    assert "Task inference.check_endpoint[" in celery_worker_process.log_tail(20000)


def test_a_missing_row_is_logged_and_the_task_returns(celery_worker_process):
    check_endpoint.delay(987654)
    celery_worker_process.wait_for(
        lambda: b"endpoint 987654 does not exist" in celery_worker_process.log_path.read_bytes(),
        timeout=60,
        what="the warning for a missing endpoint",
    )
