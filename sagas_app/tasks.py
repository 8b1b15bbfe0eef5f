"""Celery entry points of the sagas: events from the bus, advancing sagas, and beat's tick.

The task that starts sagas (from their events) advances them itself, right after its transaction commits: no
message, queue or worker between an order placed and its first step. It advances up to INLINE of them, within
INLINE_SECONDS, and hands the rest to `advance_sagas` tasks of INLINE each, so the sagas worker's other processes
share a burst.
"""

import time
from collections.abc import Iterable
from typing import Any
from uuid import UUID

import structlog
from celery import shared_task

from observability import tracing
from outbox_app.upcasting import upcast_all
from sagas_app import bookkeeping, definitions, executor, reconcile

log = structlog.get_logger("sagas")
INLINE = 10
INLINE_SECONDS = 10.0


def queue_advance(saga_ids: Iterable[UUID]) -> None:
    for saga_id in saga_ids:
        advance_saga.delay(str(saga_id))


def advance_here(saga_ids: list[UUID]) -> None:
    """Advance up to INLINE sagas in this task, within INLINE_SECONDS; queue the others."""
    mine, rest = saga_ids[:INLINE], saga_ids[INLINE:]
    for start in range(0, len(rest), INLINE):
        advance_sagas.delay([str(saga_id) for saga_id in rest[start : start + INLINE]])
    deadline = time.monotonic() + INLINE_SECONDS
    for index, saga_id in enumerate(mine):
        if time.monotonic() > deadline:
            queue_advance(mine[index:])
            return
        try:
            run = executor.advance(saga_id)
        except Exception:
            # The database or the broker went away mid-run: a task of its own retries it (beat's tick, if not).
            log.warning("saga.advance_failed", saga_id=str(saga_id), exc_info=True)
            queue_advance([saga_id])
            continue
        resume_later(saga_id, run)


def resume_later(saga_id: UUID, run: executor.Run) -> None:
    """Come back when the retry is due rather than at the next tick (which remains the safety net). Eager mode
    (the embedded default) would run it at once, so there the saga waits for an operator or a beat."""
    if run.resume_in is not None and not advance_saga.app.conf.task_always_eager:
        advance_saga.apply_async(args=(str(saga_id),), countdown=run.resume_in)


# The relay hands an event over once: a delivery that fails (the database away) is retried, not dropped.
@shared_task(
    name=definitions.HANDLE_EVENTS_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(Exception,),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=20,
    time_limit=60,
    soft_time_limit=55,
    ignore_result=True,
)
def handle_events(envelopes: list[dict[str, Any]]) -> int:
    with tracing.consuming("saga events", envelopes):
        with bookkeeping.records():
            # Upcast on receipt: a message published before a deploy may carry an older schema.
            saga_ids = definitions.on_events(upcast_all(envelopes))
        advance_here(saga_ids)
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
    resume_later(UUID(saga_id), run)
    return run.status


@shared_task(
    name="sagas_app.advance_sagas",
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=120,
    soft_time_limit=110,
    ignore_result=True,
)
def advance_sagas(saga_ids: list[str]) -> int:
    advance_here([UUID(saga_id) for saga_id in saga_ids])
    return len(saga_ids)


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
