"""How sagas start and stop from outside: order events from the bus, and operators' retry and abort.

Each function changes the saga row (bumping its version, so a running executor re-reads it) and returns the
sagas to advance; the caller queues them once its transaction commits.
"""

from typing import Any
from uuid import UUID

import structlog
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from observability import tracing
from sagas_app import domain
from sagas_app.models import Saga

log = structlog.get_logger("sagas")
FULFILMENT = "order_fulfilment"


def on_order_events(envelopes: list[dict[str, Any]]) -> list[UUID]:
    """OrderPlaced starts the fulfilment saga (once per order); a customer's OrderCancelled makes it compensate.

    Both are idempotent, so a redelivered event changes nothing. An OrderCancelled that overtakes its
    OrderPlaced finds no saga and is dropped: the saga, once started, finds the order cancelled at its
    first step and compensates with reason customer_request all the same.
    """
    to_advance = []
    for envelope in envelopes:
        if envelope["event_type"] == "OrderPlaced":
            started = start_fulfilment(envelope)
        elif envelope["event_type"] == "OrderCancelled" and envelope["payload"]["reason"] == domain.CUSTOMER_REQUEST:
            started = request_cancellation(UUID(envelope["aggregate_id"]), domain.CUSTOMER_REQUEST)
        else:
            started = None
        if started is not None:
            to_advance.append(started)
    return to_advance


def start_fulfilment(envelope: dict[str, Any]) -> UUID | None:
    payload = envelope["payload"]
    saga, created = Saga.objects.get_or_create(
        order_id=UUID(payload["order_id"]),
        defaults={
            "saga_type": FULFILMENT,
            "current_step": domain.FIRST_STEP,
            "next_attempt_at": timezone.now(),
            "context": {
                "order_id": payload["order_id"],
                "customer_id": payload["customer_id"],
                "total": payload["total"],
                "correlation_id": envelope.get("correlation_id") or envelope["event_id"],
                "causation_id": envelope["event_id"],
                **tracing.trace_metadata(),  # each run of the saga continues this trace
            },
        },
    )
    if created:
        log.info("saga.started", saga_id=str(saga.saga_id), order_id=str(saga.order_id))
        return saga.saga_id
    return None


def request_cancellation(order_id: UUID, reason: str) -> UUID | None:
    """Flag a saga that is still going forward (or failed going forward: an operator's retry compensates)."""
    now = timezone.now()
    updated = (
        Saga.objects.filter(order_id=order_id, status__in=(domain.RUNNING, domain.FAILED), reason="")
        .filter(requested_cancellation="")
        .update(requested_cancellation=reason, next_attempt_at=now, version=F("version") + 1, updated_at=now)
    )
    if not updated:
        return None
    log.info("saga.cancellation_requested", order_id=str(order_id), reason=reason)
    return Saga.objects.values_list("saga_id", flat=True).get(order_id=order_id)


def retry(saga_id: UUID) -> bool:
    """A failed saga works on its current step again with fresh attempts; a waiting one goes on now."""
    with transaction.atomic():
        saga = Saga.objects.select_for_update().filter(pk=saga_id).first()
        if saga is None or saga.status == domain.COMPLETED:
            return False
        if saga.status == domain.FAILED:
            saga.status = domain.status_after_operator_retry(saga.state())
            saga.attempts = 0
        _wake(saga)
    log.info("saga.retried_by_operator", saga_id=str(saga_id), status=saga.status)
    return True


def abort(saga_id: UUID, reason: str = domain.CUSTOMER_REQUEST) -> bool:
    """Compensate the saga: what it started is undone and the order cancelled with the reason."""
    if reason not in domain.CANCELLATION_REASONS:
        raise ValueError(f"Unknown cancellation reason {reason!r}.")
    with transaction.atomic():
        saga = Saga.objects.select_for_update().filter(pk=saga_id).first()
        if saga is None or not domain.can_abort(saga.state()):
            return False
        if saga.status == domain.FAILED:
            saga.status = domain.status_after_operator_retry(saga.state())
            saga.attempts = 0
        if saga.status == domain.RUNNING and not saga.requested_cancellation:
            saga.requested_cancellation = reason
        _wake(saga)
    log.info("saga.aborted_by_operator", saga_id=str(saga_id), reason=reason, status=saga.status)
    return True


def _wake(saga: Saga) -> None:
    saga.next_attempt_at = timezone.now()
    saga.version += 1
    saga.save(
        update_fields=["status", "attempts", "requested_cancellation", "next_attempt_at", "version", "updated_at"]
    )
