"""Celery tasks of the inference app: they take ids, log and return when a row is missing."""

import logging

from celery import shared_task

from inference.models import ModelEndpoint
from inference.services import endpoint_check

logger = logging.getLogger(__name__)


@shared_task(name="inference.check_endpoint")
def check_endpoint(endpoint_id: int) -> bool | None:
    """Test the connection to every replica of an endpoint and store the answer on its row."""
    endpoint = ModelEndpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        logger.warning("check_endpoint: endpoint %s does not exist", endpoint_id)
        return None
    return endpoint_check(endpoint=endpoint)["ok"]
