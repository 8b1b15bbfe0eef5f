"""What operators see and do with the outbox: its status, retrying, requeueing and pruning events.

The admin, the management commands and the metrics all go through here.
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import reduce
from operator import or_
from typing import Any

from django.db import transaction
from django.db.models import Count, Max, Min, Q, QuerySet
from django.utils import timezone

from outbox_app.models import OutboxEvent
from outbox_app.outbox import nudge_relay
from outbox_app.upcasting import stored_names

RATE_WINDOW = timedelta(seconds=60)
AGGREGATES_PER_QUERY = 100


@dataclass(frozen=True, kw_only=True)
class Backlog:
    pending: int
    oldest_pending_age_seconds: float | None
    dead: int


@dataclass(frozen=True, kw_only=True)
class OutboxStatus(Backlog):
    published_last_minute: int
    blocked_behind_dead: int

    @property
    def publish_rate_per_second(self) -> float:
        return self.published_last_minute / RATE_WINDOW.total_seconds()

    def as_dict(self) -> dict[str, int | float | None]:
        return {
            "backlog": self.pending,
            "oldest_pending_age_seconds": self.oldest_pending_age_seconds,
            "publish_rate_per_second": round(self.publish_rate_per_second, 3),
            "published_last_minute": self.published_last_minute,
            "dead": self.dead,
            "blocked_behind_dead": self.blocked_behind_dead,
        }


def read_backlog() -> Backlog:
    """The cheap figures (the partial indexes answer them): cheap enough for every metrics scrape."""
    pending = OutboxEvent.objects.pending().aggregate(count=Count("pk"), oldest=Min("created_at"))
    oldest = pending["oldest"]
    return Backlog(
        pending=pending["count"],
        oldest_pending_age_seconds=None if oldest is None else max((timezone.now() - oldest).total_seconds(), 0.0),
        dead=OutboxEvent.objects.dead().count(),
    )


def read_status() -> OutboxStatus:
    backlog = read_backlog()
    published_last_minute = OutboxEvent.objects.filter(published_at__gte=timezone.now() - RATE_WINDOW).count()
    return OutboxStatus(
        pending=backlog.pending,
        oldest_pending_age_seconds=backlog.oldest_pending_age_seconds,
        dead=backlog.dead,
        published_last_minute=published_last_minute,
        blocked_behind_dead=_blocked_behind_dead() if backlog.dead else 0,
    )


def _blocked_behind_dead() -> int:
    """Pending events that wait for a dead earlier version of their aggregate (requeue it to release them).

    Looked up from the dead side (a handful, on their partial index), one aggregate range per unique-index probe.
    """
    lowest_dead = (
        OutboxEvent.objects.dead()
        .values_list("aggregate_type", "aggregate_id")
        .annotate(version=Min("aggregate_version"))
        .order_by()
    )
    return sum(
        OutboxEvent.objects.pending().filter(later).count()
        for later in _later_versions({(t, i): version for t, i, version in lowest_dead})
    )


def retry_now(events: QuerySet[OutboxEvent]) -> int:
    """Make the selected pending events, and the later versions deferred behind them, due now."""
    with transaction.atomic():
        selected = OutboxEvent.objects.pending().filter(pk__in=events.values("pk"))
        _release_later_versions(selected)
        count = selected.update(next_attempt_at=None)
        if count:
            transaction.on_commit(nudge_relay)
    return count


def requeue_dead(events: QuerySet[OutboxEvent]) -> int:
    """Give the selected dead events a fresh set of attempts; the last error stays for the record.

    The later versions of their aggregates, deferred while they were dead, become due with them.
    """
    with transaction.atomic():
        selected = OutboxEvent.objects.dead().filter(pk__in=events.values("pk"))
        _release_later_versions(selected)
        count = selected.update(dead_at=None, attempts=0, next_attempt_at=None)
        if count:
            transaction.on_commit(nudge_relay)
    return count


def _release_later_versions(events: QuerySet[OutboxEvent]) -> None:
    lowest: dict[tuple[str, str], int] = {}
    rows = events.values_list("aggregate_type", "aggregate_id", "aggregate_version")
    for aggregate_type, aggregate_id, version in rows:
        key = (aggregate_type, aggregate_id)
        lowest[key] = min(lowest.get(key, version), version)
    for later in _later_versions(lowest):
        OutboxEvent.objects.pending().filter(later).update(next_attempt_at=None)


def _later_versions(lowest: dict[tuple[str, str], int]) -> Iterator[Q]:
    """Conditions matching the versions after the given one of each aggregate, a bounded number per query."""
    later = [
        Q(aggregate_type=aggregate_type, aggregate_id=aggregate_id, aggregate_version__gt=version)
        for (aggregate_type, aggregate_id), version in lowest.items()
    ]
    for start in range(0, len(later), AGGREGATES_PER_QUERY):
        yield reduce(or_, later[start : start + AGGREGATES_PER_QUERY])


@dataclass(frozen=True)
class Published:
    published_at: datetime
    event_id: str
    envelope: dict[str, Any]


def published_between(
    event_types: Sequence[str], *, since: datetime, until: datetime, after_id: str = "", limit: int = 1000
) -> list[Published]:
    """Events of these types published in [since, until), in publication order, as they travelled on the bus.

    What a consumer that may have lost deliveries reconciles against: it reads forward page by page, passing
    the last one's published_at as `since` and its event_id as `after_id` (a relay batch shares one timestamp).
    """
    rows = OutboxEvent.objects.filter(event_type__in=stored_names(event_types), published_at__lt=until)
    if after_id:
        rows = rows.filter(Q(published_at__gt=since) | Q(published_at=since, event_id__gt=after_id))
    else:
        rows = rows.filter(published_at__gte=since)
    return [
        Published(published_at=row.published_at, event_id=str(row.event_id), envelope=row.to_envelope())
        for row in rows.order_by("published_at", "event_id")[:limit]
        if row.published_at is not None
    ]


def latest_versions(aggregates: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The version of each aggregate's newest event in the log, read on the primary: every command acknowledged so
    far wrote its events there in its own transaction. An aggregate with no event left in the log is absent."""
    if not aggregates:
        return {}
    which = reduce(or_, (Q(aggregate_type=kind, aggregate_id=key) for kind, key in aggregates))
    rows = (
        OutboxEvent.objects.using("default")
        .filter(which)
        .values_list("aggregate_type", "aggregate_id")
        .annotate(latest=Max("aggregate_version"))
    )
    return {(kind, key): latest for kind, key, latest in rows}


def prune_published(
    *,
    older_than: timedelta,
    batch_size: int = 1000,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Delete events published before now - older_than, batch by batch; pending and dead events are never touched.

    Returns how many were deleted (or, with dry_run, how many would be); `progress` hears each batch's count.
    """
    prunable = OutboxEvent.objects.filter(published_at__lt=timezone.now() - older_than)
    if dry_run:
        return prunable.count()
    deleted = 0
    while batch := list(prunable.values_list("pk", flat=True)[:batch_size]):
        # Each batch is its own short transaction, so pruning a long log never holds locks for long.
        removed = OutboxEvent.objects.filter(pk__in=batch, published_at__isnull=False).delete()[0]
        deleted += removed
        if progress is not None:
            progress(removed)
    return deleted
