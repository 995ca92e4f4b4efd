"""Celery tasks of the inference app: they take ids, log and return when a row is missing."""

import logging

from celery import shared_task
from django.conf import settings

from inference.models import GenerationRun, ModelEndpoint, ScoreRun
from inference.services.endpoints import endpoint_check
from inference.services.generation import outputs_generate, run_status_refresh
from inference.services.score_compute import score_run_status_refresh, scores_compute

logger = logging.getLogger(__name__)

BUSY_RETRIES = 3


@shared_task(name="inference.check_endpoint")
def check_endpoint(endpoint_id: int) -> bool | None:
    """Test the connection to every replica of an endpoint and store the answer on its row."""
    endpoint = ModelEndpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        logger.warning("check_endpoint: endpoint %s does not exist", endpoint_id)
        return None
    return endpoint_check(endpoint=endpoint)["ok"]


@shared_task(name="inference.check_endpoints")
def check_endpoints() -> dict[int, bool]:
    """Test every endpoint's replicas (Celery beat, every INFERENCE_ENDPOINT_CHECK_SECONDS), so the
    endpoints page shows a recent answer from the stored `last_check` without calling any server."""
    return {
        endpoint.pk: endpoint_check(endpoint=endpoint)["ok"]
        for endpoint in ModelEndpoint.objects.order_by("pk")
    }


# acks_late + reject_on_worker_lost: a chunk whose worker dies is delivered again. That is safe only
# because outputs_generate claims and writes with conditional UPDATEs (see its module docstring).
@shared_task(name="inference.generate_chunk", bind=True, acks_late=True, reject_on_worker_lost=True)
def generate_chunk(self, run_id: int, output_ids: list[int]) -> dict | None:
    """Fill the pending outputs among `output_ids` of run `run_id`, then refresh the run's status.

    Outputs still held by another worker's fresh claim are tried again once that claim would have
    gone stale, so a dead worker's outputs are picked up without anyone resuming the run.
    """
    if not GenerationRun.objects.filter(pk=run_id).exists():
        logger.warning("generate_chunk: run %s does not exist", run_id)
        return None
    report = outputs_generate(run_id=run_id, output_ids=output_ids)
    run_status_refresh(run_id=run_id)
    logger.info(
        "generate_chunk: run %s: %d claimed, %d done, %d failed, %d cancelled, %d held elsewhere",
        run_id,
        report.claimed,
        report.done,
        report.failed,
        report.cancelled,
        len(report.busy),
    )
    if report.busy and not self.request.is_eager and self.request.retries < BUSY_RETRIES:
        raise self.retry(args=(run_id, report.busy), countdown=settings.INFERENCE_CLAIM_STALE_SECONDS + 5)
    return {"claimed": report.claimed, "done": report.done, "failed": report.failed, "busy": len(report.busy)}


# The same delivery rules as generate_chunk: scores_compute claims and writes conditionally.
@shared_task(name="inference.score_chunk", bind=True, acks_late=True, reject_on_worker_lost=True)
def score_chunk(self, run_id: int, score_ids: list[int]) -> dict | None:
    """Fill the pending scores among `score_ids` of score run `run_id`, then refresh the run's status."""

    if not ScoreRun.objects.filter(pk=run_id).exists():
        logger.warning("score_chunk: score run %s does not exist", run_id)
        return None
    report = scores_compute(run_id=run_id, score_ids=score_ids)
    score_run_status_refresh(run_id=run_id)
    logger.info(
        "score_chunk: score run %s: %d claimed, %d done, %d failed, %d cancelled, %d held elsewhere",
        run_id,
        report.claimed,
        report.done,
        report.failed,
        report.cancelled,
        len(report.busy),
    )
    if report.busy and not self.request.is_eager and self.request.retries < BUSY_RETRIES:
        raise self.retry(args=(run_id, report.busy), countdown=settings.INFERENCE_CLAIM_STALE_SECONDS + 5)
    return {"claimed": report.claimed, "done": report.done, "failed": report.failed, "busy": len(report.busy)}
