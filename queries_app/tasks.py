"""Celery entry point of the read side: apply a batch of envelopes; retry what waits or failed, then park it."""

from datetime import timedelta
from typing import Any

import structlog
from celery import Task, shared_task
from django.conf import settings

from observability import tracing
from outbox_app.upcasting import upcast
from queries_app.envelopes import Envelope
from queries_app.projection_engine import inbox
from queries_app.projection_engine.apply import INFRASTRUCTURE_ERRORS, park, project

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
def project_events(self: Task, envelopes: list[dict[str, Any]], attempt: int = 1) -> int:
    try:
        with tracing.consuming("project events", envelopes, attempt=attempt):
            # Upcast on receipt: a message published before a deploy may carry an older schema.
            run = project([Envelope(**upcast(e)) for e in envelopes])  # type: ignore[typeddict-item]
    except INFRASTRUCTURE_ERRORS as error:
        # An outage is no fault of the events: retry the whole batch (applied ones are duplicates) without
        # counting towards parking.
        log.warning("projection.infrastructure_error", error=str(error), retries=self.request.retries)
        raise self.retry(exc=error, countdown=min(2 ** min(self.request.retries, 5), 30)) from error
    if run.pending:
        log.info("projection.pending", pending=len(run.pending), attempt=attempt)
        if attempt < settings.PROJECTION_MAX_ATTEMPTS:
            raise self.retry(
                args=(list(run.pending_envelopes),),
                kwargs={"attempt": attempt + 1},
                countdown=settings.PROJECTION_GAP_RETRY_SECONDS,
            )
        for pending in run.pending:
            park(pending, attempts=attempt)
    return run.applied


@shared_task(name="queries_app.measure_projection_lag", time_limit=120, soft_time_limit=110, ignore_result=True)
def measure_projection_lag() -> int:
    """Beat: measure every projection's lag for /metrics and the status document (see queries_app/metrics.py)."""
    from queries_app import metrics

    return len(metrics.measure())


@shared_task(name="queries_app.redeliver_unapplied_events", time_limit=120, soft_time_limit=110, ignore_result=True)
def redeliver_unapplied_events() -> int:
    """Beat: feed each projection the published events it lost on the way (see queries_app/redelivery.py).

    The lag measured by beat (queries_app.metrics) says which projections have an event older than the
    threshold still unapplied; only those pay for the log query. Without a measurement, every one does.
    """
    from queries_app import metrics
    from queries_app.projections import PROJECTIONS
    from queries_app.redelivery import redeliver

    measured = metrics.last_measured()
    applied = 0
    for projection in PROJECTIONS:
        figures = measured.get(projection.name)
        if figures is not None and figures["age_seconds"] < settings.PROJECTION_REDELIVER_AFTER_SECONDS:
            continue
        applied += redeliver(projection).applied
    return applied


@shared_task(name="queries_app.prune_inbox", time_limit=600, soft_time_limit=590, ignore_result=True)
def prune_inbox() -> int:
    """Beat: keep the projections' inbox to its window (see queries_app/projection_engine/inbox.py)."""
    return inbox.prune_inbox(older_than=timedelta(seconds=settings.PROJECTION_INBOX_WINDOW_SECONDS))
