"""What operators see and do with the webhooks: status figures, retrying deliveries, pruning old ones.

The admin, the management command, beat and the metrics all go through here.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Min, Q, QuerySet
from django.utils import timezone

from webhooks_app.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

PENDING = WebhookDelivery.Status.PENDING
FAILED = WebhookDelivery.Status.FAILED


@dataclass(frozen=True, kw_only=True)
class WebhooksStatus:
    pending: int
    oldest_due_age_seconds: float | None
    failed: int
    enabled_endpoints: int
    disabled_endpoints: int

    def as_dict(self) -> dict[str, int | float | None]:
        return dict(self.__dict__)


def read_status() -> WebhooksStatus:
    """Cheap figures (partial indexes answer them): cheap enough for every metrics scrape."""
    now = timezone.now()
    pending = WebhookDelivery.objects.filter(status=PENDING).aggregate(
        count=Count("pk"), oldest_due=Min("next_attempt_at", filter=Q(next_attempt_at__lte=now))
    )
    endpoints = WebhookEndpoint.objects.live().aggregate(
        enabled=Count("pk", filter=Q(disabled_at__isnull=True)),
        disabled=Count("pk", filter=Q(disabled_at__isnull=False)),
    )
    oldest = pending["oldest_due"]
    return WebhooksStatus(
        pending=pending["count"],
        oldest_due_age_seconds=None if oldest is None else max((now - oldest).total_seconds(), 0.0),
        failed=WebhookDelivery.objects.filter(status=FAILED).count(),
        enabled_endpoints=endpoints["enabled"],
        disabled_endpoints=endpoints["disabled"],
    )


def retry_now(deliveries: QuerySet[WebhookDelivery]) -> int:
    """Operators: attempt the selected pending or failed deliveries at the next beat tick, with a fresh retry window.

    Deliveries of a disabled or deleted endpoint, and delivered ones, are left as they are.
    """
    now = timezone.now()
    selected = deliveries.filter(
        status__in=[PENDING, FAILED], endpoint__disabled_at__isnull=True, endpoint__deleted_at__isnull=True
    )
    # A pending delivery in flight keeps its lease: its attempt is under way.
    free = Q(status=FAILED) | Q(leased_until__isnull=True) | Q(leased_until__lt=now)
    return WebhookDelivery.objects.filter(pk__in=selected.filter(free).values("pk")).update(
        status=PENDING,
        next_attempt_at=now,
        retry_until=now + timedelta(seconds=settings.WEBHOOKS_RETRY_FOR_SECONDS),
        failed_at=None,
        lease_token=None,
        leased_until=None,
    )


def prune_deliveries(*, older_than: timedelta, batch_size: int = 1000) -> int:
    """Delete finished (delivered or failed) deliveries created before now - older_than, with their attempts."""
    finished = WebhookDelivery.objects.filter(created_at__lt=timezone.now() - older_than).exclude(status=PENDING)
    deleted = 0
    while batch := list(finished.values_list("pk", flat=True)[:batch_size]):
        with transaction.atomic():
            WebhookAttempt.objects.filter(delivery_id__in=batch).delete()
            deleted += WebhookDelivery.objects.filter(pk__in=batch).delete()[0]
    # Endpoints their clients deleted go once none of their deliveries is left.
    WebhookEndpoint.objects.filter(deleted_at__lt=timezone.now() - older_than, deliveries__isnull=True).delete()
    return deleted
