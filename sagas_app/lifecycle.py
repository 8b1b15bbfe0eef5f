"""How sagas start and stop from outside: started and cancelled by the events of their type, retried and aborted by
operators.

Each function changes the saga row (bumping its version, so a running executor re-reads it) and returns the
sagas to advance; the caller queues them once its transaction commits.
"""

from typing import Any
from uuid import UUID

import structlog
from django.db import transaction
from django.db.models import F
from django.utils import timezone

import sqlkit
from observability import tracing
from sagas_app import definitions, domain
from sagas_app.models import Saga

log = structlog.get_logger("sagas")
ONCE_PER_CORRELATION = sqlkit.OnConflict(target=("saga_type", "correlation_id"))


def start(saga_type: str, correlation_id: str, *, context: dict[str, Any], cause: dict[str, Any]) -> UUID | None:
    """Start the saga of this type for this correlation id, once: a second start (a redelivered event) is a no-op.

    `context`: what its steps need. `cause`: the envelope of the event that starts it; its correlation id and event
    id travel with every step's command.
    """
    definition = definitions.definition(saga_type)
    now = timezone.now()
    saga = Saga(
        saga_type=saga_type,
        correlation_id=correlation_id,
        current_step=definition.first_step,
        next_attempt_at=now,
        context={
            **context,
            "correlation_id": cause.get("correlation_id") or cause["event_id"],
            "causation_id": cause["event_id"],
            **tracing.trace_metadata(),  # each run of the saga continues this trace
        },
        created_at=now,
        updated_at=now,
    )
    # One statement: the row, unless the saga exists already (a redelivered event), then nothing.
    (inserted,) = sqlkit.send(
        sqlkit.insert(
            Saga,
            [{field.attname: getattr(saga, field.attname) for field in Saga._meta.concrete_fields}],
            on_conflict=ONCE_PER_CORRELATION,
            returning=("saga_id",),
        )
    )
    if inserted.rows:
        log.info("saga.started", saga_id=str(saga.saga_id), saga_type=saga_type, correlation_id=correlation_id)
        return saga.saga_id
    return None


def request_cancellation(saga_type: str, correlation_id: str, reason: str) -> UUID | None:
    """Flag a saga that is still going forward (or failed going forward: an operator's retry compensates)."""
    now = timezone.now()
    sagas = Saga.objects.filter(saga_type=saga_type, correlation_id=correlation_id)
    updated = (sagas.filter(status__in=(domain.RUNNING, domain.FAILED), reason="", requested_cancellation="")).update(
        requested_cancellation=reason, next_attempt_at=now, version=F("version") + 1, updated_at=now
    )
    if not updated:
        return None
    log.info("saga.cancellation_requested", saga_type=saga_type, correlation_id=correlation_id, reason=reason)
    return sagas.values_list("saga_id", flat=True).get()


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


def abort(saga_id: UUID, reason: str = "") -> bool:
    """Compensate the saga with the reason (by default its definition's first): what it started is undone."""
    with transaction.atomic():
        saga = Saga.objects.select_for_update().filter(pk=saga_id).first()
        if saga is None or not domain.can_abort(saga.state()):
            return False
        reasons = definitions.definition(saga.saga_type).cancellation_reasons
        reason = reason or reasons[0]
        if reason not in reasons:
            raise ValueError(f"Unknown cancellation reason {reason!r} for a {saga.saga_type} saga.")
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
