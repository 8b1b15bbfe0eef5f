"""Celery entry point of the read side: apply a batch of envelopes; retry the ones waiting on a gap."""

from typing import Any

import structlog
from celery import Task, shared_task
from django.conf import settings

from queries_app.envelopes import Envelope
from queries_app.projections.engine import project

log = structlog.get_logger(__name__)


@shared_task(
    bind=True,
    name="queries_app.project_events",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
    time_limit=50,
    soft_time_limit=45,
    ignore_result=True,
)
def project_events(self: Task, envelopes: list[dict[str, Any]]) -> int:
    run = project([Envelope(**e) for e in envelopes])  # type: ignore[typeddict-item]
    if run.waiting:
        attempt = self.request.retries + 1
        log.info("projection.waiting_for_gap", waiting=len(run.waiting), attempt=attempt)
        if attempt < settings.PROJECTION_MAX_ATTEMPTS:
            raise self.retry(args=(list(run.waiting),), countdown=settings.PROJECTION_GAP_RETRY_SECONDS)
        log.error("projection.gap_not_filled", event_ids=[e["event_id"] for e in run.waiting])
    return run.applied
