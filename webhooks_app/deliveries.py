"""Webhook deliveries: one row per event and endpoint, the durable state of its attempts and retries.

- **Fan-out**: a batch of published events becomes one delivery per event and endpoint that subscribed to its type
  (enabled, of a client not revoked, created before the event occurred). A delivery is created at most once per
  event and endpoint (a unique index), so an event that reaches the fan-out twice is delivered once.
- **Hand-out**: a delivery is attempted by whoever holds its lease token. The fan-out hands new deliveries out
  at once; beat hands out the due ones whose lease is free (`dispatch_due`), which covers retries, a task lost
  on the way, and a worker killed mid-attempt (its lease expires).
- **Attempt**: sign, POST (webhooks_app/transport.py), and record the attempt. A 2xx delivers; anything else
  (another status, a timeout, a refused address) schedules the next attempt with exponential backoff, until
  `retry_until` (WEBHOOKS_RETRY_FOR_SECONDS after the event, at least a day by default) has passed: then it
  fails. An endpoint that has failed every attempt for WEBHOOKS_DISABLE_AFTER_SECONDS is disabled, and says why.

Nothing is held in memory between steps: a worker killed anywhere loses no delivery, and at worst repeats an
attempt the receiver may already have had (the same webhook-id, for the receiver to dedupe).
"""

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import structlog
from celery import current_app
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from webhooks_app import metrics, signing, transport
from webhooks_app.addresses import Resolver, parse_target, system_resolver
from webhooks_app.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

log = structlog.get_logger(__name__)

DELIVER_TASK = "webhooks_app.deliver_webhook"
PENDING = WebhookDelivery.Status.PENDING
DELIVERED = WebhookDelivery.Status.DELIVERED
FAILED = WebhookDelivery.Status.FAILED


@dataclass(frozen=True)
class Handout:
    """A delivery handed to a worker: it may attempt it while the lease token is still the delivery's."""

    delivery_id: int
    lease_token: UUID


def webhook_body(envelope: dict[str, Any]) -> str:
    """The Standard Webhooks payload: the type, when the event occurred, and the event as the feed shows it."""
    message = {"type": envelope["event_type"], "timestamp": envelope["occurred_at"], "data": envelope}
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def _lease_until(now: datetime) -> datetime:
    return now + timedelta(seconds=settings.WEBHOOKS_LEASE_SECONDS)


def fan_out(envelopes: Iterable[dict[str, Any]]) -> list[Handout]:
    """Create the deliveries of these published events that do not exist yet, and hand them out after the commit."""
    endpoints = list(WebhookEndpoint.objects.receiving().values_list("pk", "event_types", "created_at"))
    if not endpoints:
        return []
    now = timezone.now()
    retry_until = now + timedelta(seconds=settings.WEBHOOKS_RETRY_FOR_SECONDS)
    rows: list[WebhookDelivery] = []
    for envelope in envelopes:
        occurred_at = datetime.fromisoformat(envelope["occurred_at"])
        wanted_by = [
            pk for pk, types, created_at in endpoints if envelope["event_type"] in types and created_at <= occurred_at
        ]
        if not wanted_by:
            continue
        body = webhook_body(envelope)
        rows += [
            WebhookDelivery(
                endpoint_id=endpoint_id,
                event_id=envelope["event_id"],
                event_type=envelope["event_type"],
                body=body,
                next_attempt_at=now,
                retry_until=retry_until,
                lease_token=uuid4(),
                leased_until=_lease_until(now),
            )
            for endpoint_id in wanted_by
        ]
    if not rows:
        return []
    with transaction.atomic():
        WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True)
        # The rows that already existed kept their own token: only the new ones come back.
        created = WebhookDelivery.objects.filter(lease_token__in=[row.lease_token for row in rows])
        handouts = [Handout(pk, token) for pk, token in created.values_list("pk", "lease_token") if token is not None]
        transaction.on_commit(lambda: hand_out(handouts))
    return handouts


def hand_out(handouts: list[Handout]) -> None:
    """Queue one attempt per delivery; one that cannot be queued (the broker is away) waits for beat."""
    for handout in handouts:
        try:
            current_app.signature(DELIVER_TASK, args=(handout.delivery_id, str(handout.lease_token))).apply_async()
        except Exception:
            log.warning("webhooks.hand_out_failed", delivery_id=handout.delivery_id, exc_info=True)
            return


def dispatch_due(*, limit: int = 500) -> list[Handout]:
    """Beat: hand out the deliveries whose attempt is due and whose lease is free (or expired)."""
    now = timezone.now()
    with transaction.atomic():
        due = list(
            WebhookDelivery.objects.filter(status=PENDING, next_attempt_at__lte=now)
            .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
            .select_for_update(skip_locked=True)
            .order_by("next_attempt_at")
            .values_list("pk", flat=True)[:limit]
        )
        leased = [WebhookDelivery(pk=pk, lease_token=uuid4(), leased_until=_lease_until(now)) for pk in due]
        WebhookDelivery.objects.bulk_update(leased, ["lease_token", "leased_until"])
        handouts = [Handout(row.pk, row.lease_token) for row in leased if row.lease_token is not None]
        transaction.on_commit(lambda: hand_out(handouts))
    return handouts


def retry_delay(attempts: int) -> timedelta:
    """Exponential: the base after the first failure, doubling after each one, capped; 10% jitter either way so the
    deliveries an outage failed together do not come back together."""
    seconds = settings.WEBHOOKS_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0)
    seconds = min(seconds, settings.WEBHOOKS_RETRY_MAX_INTERVAL_SECONDS)
    return timedelta(seconds=seconds * random.uniform(0.9, 1.1))


def deliver(delivery_id: int, lease_token: UUID, *, resolve: Resolver = system_resolver) -> str | None:
    """One attempt of a delivery, if the lease token is still its own; the attempt's outcome, or None."""
    delivery = _start(delivery_id, lease_token)
    if delivery is None:
        return None
    endpoint = delivery.endpoint
    if endpoint.status != "enabled":
        _give_up(WebhookDelivery.objects.filter(pk=delivery.pk), f"The endpoint is {endpoint.status}.")
        return None
    now = timezone.now()
    body = delivery.body.encode()
    headers = signing.delivery_headers(
        endpoint.signing_secrets(now), webhook_id=str(delivery.event_id), timestamp=now, body=body
    )
    try:
        exchange = transport.post(parse_target(endpoint.url), body, headers, resolve=resolve)
    except SoftTimeLimitExceeded:
        exchange = transport.Exchange("timeout", error="No complete answer within the task's time limit.")
    _record(delivery, lease_token, exchange, started_at=now)
    return exchange.outcome


def _start(delivery_id: int, lease_token: UUID) -> WebhookDelivery | None:
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(of=("self",))
            .select_related("endpoint")
            .filter(pk=delivery_id, lease_token=lease_token, status=PENDING)
            .first()
        )
        if delivery is not None:
            # The whole attempt is covered, however long the task waited in the queue.
            delivery.leased_until = _lease_until(timezone.now())
            delivery.save(update_fields=["leased_until"])
    return delivery


def _record(
    delivery: WebhookDelivery, lease_token: UUID, exchange: transport.Exchange, *, started_at: datetime
) -> None:
    now = timezone.now()
    with transaction.atomic():
        current = WebhookDelivery.objects.select_for_update().filter(pk=delivery.pk, lease_token=lease_token).first()
        if current is None:
            # The endpoint was deleted meanwhile, or the attempt outlived its lease and another one took over.
            log.warning("webhooks.attempt_not_recorded", delivery_id=delivery.pk, outcome=exchange.outcome)
            return
        number = current.attempts + 1
        WebhookAttempt.objects.create(
            delivery=current,
            number=number,
            started_at=started_at,
            duration_ms=exchange.duration_ms,
            outcome=exchange.outcome,
            status_code=exchange.status_code,
            address=exchange.address[:64],
            error=exchange.error,
            response_excerpt=exchange.response_excerpt,
        )
        current.attempts = number
        current.last_attempt_at = started_at
        current.last_status_code = exchange.status_code
        current.last_error = exchange.error
        current.lease_token = current.leased_until = None
        if exchange.delivered:
            current.status, current.delivered_at, current.next_attempt_at = DELIVERED, now, None
            WebhookEndpoint.objects.filter(pk=current.endpoint_id).update(failing_since=None, last_delivered_at=now)
        else:
            next_attempt_at = now + retry_delay(number)
            if next_attempt_at > current.retry_until:
                current.status, current.failed_at, current.next_attempt_at = FAILED, now, None
            else:
                current.next_attempt_at = next_attempt_at
        current.save()
        if not exchange.delivered:
            _endpoint_failed(current.endpoint_id, exchange.error or exchange.outcome, now=now)
    metrics.record_attempt(exchange.outcome, gave_up=current.status == FAILED)
    log.info(
        "webhooks.attempt",
        delivery_id=current.pk,
        event_id=str(current.event_id),
        endpoint_id=str(current.endpoint_id),
        attempt=number,
        outcome=exchange.outcome,
        status_code=exchange.status_code,
        duration_ms=exchange.duration_ms,
        next_attempt_at=current.next_attempt_at.isoformat() if current.next_attempt_at else None,
    )


def _endpoint_failed(endpoint_id: UUID, error: str, *, now: datetime) -> None:
    """Start the endpoint's failure streak, or disable it once the streak has lasted WEBHOOKS_DISABLE_AFTER_SECONDS."""
    WebhookEndpoint.objects.filter(pk=endpoint_id, failing_since__isnull=True).update(failing_since=now)
    threshold = now - timedelta(seconds=settings.WEBHOOKS_DISABLE_AFTER_SECONDS)
    failing = WebhookEndpoint.objects.filter(pk=endpoint_id, disabled_at__isnull=True, failing_since__lte=threshold)
    since = failing.values_list("failing_since", flat=True).first()
    if since is None:
        return
    reason = f"Every delivery attempt failed from {since.isoformat()} to {now.isoformat()}; the last: {error}"
    if failing.update(disabled_at=now, disabled_reason=reason[:2000]):
        # Deliveries not in flight end now; those in flight record their outcome, and then end too.
        waiting = WebhookDelivery.objects.filter(endpoint_id=endpoint_id, status=PENDING).filter(
            Q(leased_until__isnull=True) | Q(leased_until__lt=now)
        )
        _give_up(waiting, "The endpoint was disabled.")
        metrics.ENDPOINTS_DISABLED.inc()
        log.warning("webhooks.endpoint_disabled", endpoint_id=str(endpoint_id), reason=reason)


def _give_up(deliveries: QuerySet[WebhookDelivery], why: str) -> int:
    count = deliveries.filter(status=PENDING).update(
        status=FAILED,
        failed_at=timezone.now(),
        next_attempt_at=None,
        lease_token=None,
        leased_until=None,
        last_error=why,
    )
    metrics.DELIVERIES_FAILED.inc(count)
    return count
