"""Celery entry points of the webhooks, all on the `webhooks` queue (CELERY_TASK_ROUTES) but pruning.

A slow or dead receiver ties up only the webhooks workers: the relay, the projections and the sagas run on their
own queues and never wait for a delivery.
"""

from datetime import timedelta
from typing import Any
from uuid import UUID

from celery import shared_task
from django.conf import settings

from outbox_app.upcasting import upcast_all
from webhooks_app import deliveries, erasure, operations, reconcile
from webhooks_app.apps import FAN_OUT_TASK


# The relay hands an event over once: a fan-out that fails (the database away) is retried, and the safety net
# (fan_out_missed_events) finds whatever a retry lost.
@shared_task(
    name=FAN_OUT_TASK,
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
def fan_out_events(envelopes: list[dict[str, Any]]) -> int:
    # Upcast on receipt: a message published before a deploy may carry an older schema; receivers get the current.
    current = upcast_all(envelopes)
    erasure.redact_erased_customers(current)
    return len(deliveries.fan_out(current))


# One attempt. Its time limits bound a receiver that answers byte by byte; the lease outlasts them
# (WEBHOOKS_LEASE_SECONDS > WEBHOOKS_TIMEOUT_SECONDS + 10), so no second attempt starts while one runs.
@shared_task(
    name=deliveries.DELIVER_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.WEBHOOKS_TIMEOUT_SECONDS + 5,
    time_limit=settings.WEBHOOKS_TIMEOUT_SECONDS + 10,
    ignore_result=True,
)
def deliver_webhook(delivery_id: int, lease_token: str) -> str | None:
    return deliveries.deliver(delivery_id, UUID(lease_token))


@shared_task(
    name="webhooks_app.dispatch_due_deliveries", acks_late=False, time_limit=30, soft_time_limit=25, ignore_result=True
)
def dispatch_due_deliveries() -> int:
    """Beat: hand out the deliveries due for an attempt whose lease is free (retries, and attempts lost on the way)."""
    return len(deliveries.dispatch_due())


@shared_task(
    name="webhooks_app.fan_out_missed_events", acks_late=False, time_limit=120, soft_time_limit=110, ignore_result=True
)
def fan_out_missed_events() -> int:
    """Beat: create the deliveries whose fan-out the bus lost, from the event log (webhooks_app/reconcile.py)."""
    return reconcile.fan_out_missed_events()


@shared_task(name="webhooks_app.prune_deliveries", acks_late=False, time_limit=600, soft_time_limit=590)
def prune_deliveries() -> int:
    """Beat, daily: delete delivered and failed deliveries older than WEBHOOKS_RETENTION_DAYS."""
    return operations.prune_deliveries(older_than=timedelta(days=settings.WEBHOOKS_RETENTION_DAYS))
