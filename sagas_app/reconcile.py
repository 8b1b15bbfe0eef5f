"""Starts the sagas whose OrderPlaced delivery was lost, from the event log.

`handle_events` retries a failed delivery with a countdown, and a countdown retry lives in a worker's
memory until it is due: a SIGKILLed worker takes it along (celery/celery#1810), and a broker can drop a message
it had accepted. The order would then stay pending with no saga to move it. Beat runs `start_missed_sagas()`
every SAGA_RECONCILE_INTERVAL seconds: it reads forward through the OrderPlaced events published since the
last run (a watermark in the cache, read back SAGA_RECONCILE_OVERLAP_SECONDS to cover relay transactions that
committed late), up to SAGA_RECONCILE_AFTER_SECONDS ago, and starts a saga for each order that has none.
Starting is idempotent (one saga per type and order, a unique index), so a delivery still in flight is harmless.
Without a watermark (the cache was flushed) it reads back SAGA_RECONCILE_WINDOW_SECONDS.
"""

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import structlog
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from outbox_app.operations import published_between
from sagas_app import fulfilment
from sagas_app.models import Saga

log = structlog.get_logger("sagas")

WATERMARK_KEY = "sagas:reconciled_until"
PAGE = 1000


def start_missed_sagas(now: datetime | None = None) -> list[UUID]:
    now = now or timezone.now()
    until = now - timedelta(seconds=settings.SAGA_RECONCILE_AFTER_SECONDS)
    watermark = cache.get(WATERMARK_KEY)
    if watermark is None:
        since = now - timedelta(seconds=settings.SAGA_RECONCILE_WINDOW_SECONDS)
    else:
        since = datetime.fromisoformat(watermark) - timedelta(seconds=settings.SAGA_RECONCILE_OVERLAP_SECONDS)
    started: list[UUID] = []
    after_id = ""
    while page := published_between(["OrderPlaced"], since=since, until=until, after_id=after_id, limit=PAGE):
        started += _start_sagas_missing_for([p.envelope for p in page])
        since, after_id = page[-1].published_at, page[-1].event_id
        if len(page) < PAGE:
            break
    cache.set(WATERMARK_KEY, until.isoformat(), None)
    if started:
        log.warning("saga.started_by_reconciliation", count=len(started), saga_ids=[str(s) for s in started[:20]])
    return started


def _start_sagas_missing_for(envelopes: list[dict[str, Any]]) -> list[UUID]:
    by_order = {str(UUID(e["payload"]["order_id"])): e for e in envelopes}
    known = set(
        Saga.objects.filter(saga_type=fulfilment.FULFILMENT, correlation_id__in=by_order).values_list(
            "correlation_id", flat=True
        )
    )
    started = []
    for order_id, envelope in by_order.items():
        if order_id in known:
            continue
        with transaction.atomic():
            saga_id = fulfilment.start(envelope)
        if saga_id is not None:
            started.append(saga_id)
    return started
