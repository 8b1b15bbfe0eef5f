"""The relay: claim a batch of unpublished events, publish it to the bus, mark it published.

Claiming uses FOR UPDATE SKIP LOCKED, so any number of relays run side by side; each aggregate's events
are published in version order because a relay publishes an event only when every earlier unpublished
event of its aggregate is in its own batch. Publishing and marking happen in one transaction: a relay
killed in between leaves the batch unpublished, and it is published again (consumers dedupe).
"""

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Now
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnavailable

from outbox_app import registry
from outbox_app.models import OutboxEvent

log = structlog.get_logger(__name__)

Publisher = Callable[[str, list[dict[str, Any]]], None]


def publish_to_bus(task_name: str, envelopes: list[dict[str, Any]]) -> None:
    """Send one message carrying a batch of envelopes to a subscriber task, by name."""
    if current_app.conf.task_always_eager and task_name not in current_app.tasks:
        raise LookupError(f"Task {task_name} is not registered in this process: in eager mode it would be lost.")
    current_app.signature(task_name, args=[envelopes]).apply_async(retry=False)


@dataclass(frozen=True)
class RelayReport:
    claimed: int = 0
    published: int = 0
    failed: int = 0
    dead: int = 0
    held: int = 0


def relay_once(*, batch_size: int | None = None, publish: Publisher = publish_to_bus) -> RelayReport:
    batch_size = batch_size or settings.OUTBOX_BATCH_SIZE
    with transaction.atomic():
        claimed = list(
            OutboxEvent.objects.select_for_update(skip_locked=True)
            .filter(published_at__isnull=True, dead_at__isnull=True)
            .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=Now()))
            .order_by("created_at", "event_id")[:batch_size]
        )
        if not claimed:
            return RelayReport()
        ready = _in_aggregate_order(claimed)
        published, failures = _publish(ready, publish)
        if published:
            OutboxEvent.objects.filter(event_id__in=[e.event_id for e in published]).update(
                published_at=Now(), attempts=F("attempts") + 1, last_error=""
            )
        dead = _record_failures(failures)
    report = RelayReport(
        claimed=len(claimed),
        published=len(published),
        failed=len(failures),
        dead=dead,
        held=len(claimed) - len(ready),
    )
    if report.failed or report.held:
        log.info("outbox.relay_batch", **report.__dict__)
    return report


def _in_aggregate_order(claimed: list[OutboxEvent]) -> list[OutboxEvent]:
    """Keep the events whose earlier unpublished versions are all in this batch, in version order.

    An event whose predecessor is claimed by another relay (or parked as dead) is held back, so no
    aggregate's events are ever published out of order.
    """
    by_aggregate: dict[tuple[str, str], dict[int, OutboxEvent]] = defaultdict(dict)
    for event in claimed:
        by_aggregate[(event.aggregate_type, event.aggregate_id)][event.aggregate_version] = event
    condition = Q()
    for (aggregate_type, aggregate_id), versions in by_aggregate.items():
        condition |= Q(aggregate_type=aggregate_type, aggregate_id=aggregate_id, aggregate_version__lt=max(versions))
    unpublished: dict[tuple[str, str], set[int]] = defaultdict(set)
    for aggregate_type, aggregate_id, version in OutboxEvent.objects.filter(
        condition, published_at__isnull=True
    ).values_list("aggregate_type", "aggregate_id", "aggregate_version"):
        unpublished[(aggregate_type, aggregate_id)].add(version)

    ready: set[Any] = set()
    for key, versions in by_aggregate.items():
        pending = sorted(unpublished[key] | set(versions))
        for version in pending:
            if version not in versions:
                break
            ready.add(versions[version].event_id)

    # Keep the claim order across aggregates; within one aggregate, order strictly by version.
    ordered = [e for e in claimed if e.event_id in ready]
    slots: dict[tuple[str, str], list[OutboxEvent]] = defaultdict(list)
    for event in sorted(ordered, key=lambda e: e.aggregate_version):
        slots[(event.aggregate_type, event.aggregate_id)].append(event)
    return [slots[(e.aggregate_type, e.aggregate_id)].pop(0) for e in ordered]


def _publish(
    events: Sequence[OutboxEvent], publish: Publisher
) -> tuple[list[OutboxEvent], list[tuple[OutboxEvent, Exception, bool]]]:
    """Publish batched by subscriber; on a rejected batch, retry event by event to isolate a poison one.

    Returns the events published and, for each failure, the event, its error and whether the bus itself
    was unreachable (an outage is no fault of the event and never parks it as dead).
    """
    by_task: dict[str, list[OutboxEvent]] = defaultdict(list)
    for event in events:
        for task_name in registry.subscribers_for(event.event_type):
            by_task[task_name].append(event)
    failed: dict[Any, tuple[OutboxEvent, Exception, bool]] = {}
    for task_name, batch in by_task.items():
        try:
            publish(task_name, [e.to_envelope() for e in batch])
            continue
        except BrokerUnavailable as error:
            for event in batch:
                failed[event.event_id] = (event, error, True)
            continue
        except Exception:
            log.warning("outbox.batch_rejected", task=task_name, size=len(batch), exc_info=True)
        for event in batch:
            try:
                publish(task_name, [event.to_envelope()])
            except Exception as error:
                failed[event.event_id] = (event, error, isinstance(error, BrokerUnavailable))
    published = [e for e in events if e.event_id not in failed]
    return published, list(failed.values())


def _backoff(attempts: int) -> timedelta:
    seconds = settings.OUTBOX_BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, settings.OUTBOX_BACKOFF_MAX_SECONDS))


def _record_failures(failures: list[tuple[OutboxEvent, Exception, bool]]) -> int:
    dead = 0
    now = timezone.now()
    for event, error, outage in failures:
        event.attempts += 1
        event.last_error = f"{type(error).__name__}: {error}"[:2000]
        event.next_attempt_at = now + _backoff(event.attempts)
        if not outage and event.attempts >= settings.OUTBOX_MAX_ATTEMPTS:
            event.dead_at = now
            dead += 1
            log.error("outbox.event_dead", event_id=str(event.event_id), error=event.last_error)
        event.save(update_fields=["attempts", "last_error", "next_attempt_at", "dead_at"])
    return dead


def relay_until_drained(*, batch_size: int | None = None, max_batches: int = 1000) -> RelayReport:
    """Relay batches until one comes back short; the sum of what was done."""
    batch_size = batch_size or settings.OUTBOX_BATCH_SIZE
    totals = RelayReport()
    for _ in range(max_batches):
        report = relay_once(batch_size=batch_size)
        totals = RelayReport(
            claimed=totals.claimed + report.claimed,
            published=totals.published + report.published,
            failed=totals.failed + report.failed,
            dead=totals.dead + report.dead,
            held=totals.held + report.held,
        )
        if report.claimed < batch_size or report.published == 0:
            break
    return totals
