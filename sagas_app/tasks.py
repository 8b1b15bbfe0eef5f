"""Celery entry points of the sagas: events from the bus, advancing one saga, and beat's tick."""

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from celery import shared_task
from django.db import transaction

from observability import tracing
from sagas_app import definitions, executor, reconcile


def queue_advance(saga_ids: Iterable[UUID]) -> None:
    for saga_id in saga_ids:
        advance_saga.delay(str(saga_id))


# The relay hands an event over once: a delivery that fails (the database away) is retried, not dropped.
@shared_task(
    name=definitions.HANDLE_EVENTS_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(Exception,),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=20,
    time_limit=30,
    soft_time_limit=25,
    ignore_result=True,
)
def handle_events(envelopes: list[dict[str, Any]]) -> int:
    with tracing.consuming("saga events", envelopes), transaction.atomic():
        saga_ids = definitions.on_events(envelopes)
        transaction.on_commit(lambda: queue_advance(saga_ids))
    return len(saga_ids)


# A run covers every step until the saga waits or ends; each step is bounded by the provider timeout.
@shared_task(
    name="sagas_app.advance_saga",
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=120,
    soft_time_limit=110,
    ignore_result=True,
)
def advance_saga(saga_id: str) -> str | None:
    run = executor.advance(UUID(saga_id))
    # Come back when the retry is due rather than at the next tick (which remains the safety net). Eager
    # mode (the embedded default) would run it at once, so there the saga waits for an operator or a beat.
    if run.resume_in is not None and not advance_saga.app.conf.task_always_eager:
        advance_saga.apply_async(args=(saga_id,), countdown=run.resume_in)
    return run.status


@shared_task(name="sagas_app.tick_sagas", acks_late=False, time_limit=30, soft_time_limit=25, ignore_result=True)
def tick_sagas() -> int:
    """Beat, every second: resume the sagas whose retry is due, whose deadline passed or whose worker died."""
    saga_ids = executor.dispatch_due()
    queue_advance(saga_ids)
    return len(saga_ids)


@shared_task(
    name="sagas_app.start_missed_sagas", acks_late=False, time_limit=60, soft_time_limit=55, ignore_result=True
)
def start_missed_sagas() -> int:
    """Beat: start the sagas of orders whose OrderPlaced delivery was lost (see sagas_app/reconcile.py)."""
    saga_ids = reconcile.start_missed_sagas()
    queue_advance(saga_ids)
    return len(saga_ids)
