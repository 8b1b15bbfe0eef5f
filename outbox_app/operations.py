"""What operators see and do with the outbox: its status, retrying, requeueing and archiving events.

The admin, the management commands and the metrics all go through here.
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import reduce
from operator import or_
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Max, Min, Q, QuerySet
from django.utils import timezone

from outbox_app.models import ArchivedEvent, OutboxEvent
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
    latest: dict[tuple[str, str], int] = {}
    # The archive too: `prune_outbox --older-than 0` may have moved an aggregate's newest event there.
    for table in (OutboxEvent.objects.using("default"), ArchivedEvent.objects.using("default")):
        rows = (
            table.filter(which).values_list("aggregate_type", "aggregate_id").annotate(latest=Max("aggregate_version"))
        )
        for kind, key, version in rows:
            latest[(kind, key)] = max(latest.get((kind, key), 0), version)
    return latest


_ARCHIVED_COLUMNS = (
    "event_id",
    "event_type",
    "schema_version",
    "aggregate_type",
    "aggregate_id",
    "aggregate_version",
    "payload",
    "metadata",
    "created_at",
    "published_at",
    "log_position",
)


def archive_published(
    *,
    older_than: timedelta,
    batch_size: int = 1000,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Move events published before now - older_than from the outbox to the archive, batch by batch; pending and
    dead events are never touched. `older_than` 0 archives every published event.

    The events stay in the log (outbox_app/log.py reads both tables): replay, verify and the feed still see them.
    Returns how many were moved (or, with dry_run, how many would be); `progress` hears each batch's count.
    """
    cutoff = timezone.now() - older_than
    archivable = OutboxEvent.objects.filter(published_at__lt=cutoff, log_position__isnull=False)
    if dry_run:
        return archivable.count()
    move = _move_batch_postgresql if connection.vendor == "postgresql" else _move_batch
    archived = 0
    # Each batch is its own short transaction, so archiving a long log never holds locks for long.
    while moved := move(cutoff, batch_size):
        archived += moved
        if progress is not None:
            progress(moved)
    return archived


def _move_batch_postgresql(cutoff: datetime, batch_size: int) -> int:
    """One statement: the rows leave the outbox and enter the archive in the same instant for every snapshot."""
    outbox, archive = OutboxEvent._meta.db_table, ArchivedEvent._meta.db_table
    columns = ", ".join(_ARCHIVED_COLUMNS)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"WITH moved AS (DELETE FROM {outbox} WHERE event_id IN ("
            f"SELECT event_id FROM {outbox} WHERE published_at < %s AND log_position IS NOT NULL "
            "ORDER BY published_at LIMIT %s FOR UPDATE SKIP LOCKED) "
            f"RETURNING {columns}) INSERT INTO {archive} ({columns}) SELECT {columns} FROM moved",
            [cutoff, batch_size],
        )
        return max(cursor.rowcount, 0)


def _move_batch(cutoff: datetime, batch_size: int) -> int:
    """Any other database (the embedded SQLite): copy then delete, in one transaction (its writers are serialized)."""
    with transaction.atomic():
        rows = list(
            OutboxEvent.objects.filter(published_at__lt=cutoff, log_position__isnull=False)
            .order_by("published_at")
            .values(*_ARCHIVED_COLUMNS)[:batch_size]
        )
        if not rows:
            return 0
        ArchivedEvent.objects.bulk_create([ArchivedEvent(**row) for row in rows])
        OutboxEvent.objects.filter(pk__in=[row["event_id"] for row in rows]).delete()
        return len(rows)
