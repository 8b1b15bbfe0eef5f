"""The event log in order: positions given at publication, and the one reader that follows them with a cursor.

Why positions, and not the event ids: UUIDv7 ids are taken when an event is created, in time order, but a
transaction with an earlier id can commit after one with a later id. A reader that remembered "the last id I
saw" would pass over the earlier one for good. So the log's order is the order of publication, fixed when the
relay commits: each relay transaction takes `LOG_LOCK` just before it marks its events published, gives them
the positions after the highest one so far (in the batch's order: claim order, version order within an
aggregate), and holds the lock until it commits. Positions are therefore handed out in commit order, and a
snapshot always sees a prefix of them (a relay that rolls back leaves a gap, never a later position visible
before an earlier one). A reader that passes back the last position it read can never skip an event:
whatever becomes visible later is given a position after everything it could already see.

Only published events have a position: a pending event is not in the log yet, and a dead one (parked after
its subscribers refused it) enters it when an operator requeues it and the relay publishes it. An aggregate's
later versions wait behind it, so versions stay in order.

`read_log()` is the one way to read the log in order (the event feed, the webhooks' safety net): an archive of
old events read beside the live table is one change here.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import connection
from django.db.models import F, Max, Q
from django.db.models.functions import Now

from outbox_app.models import ENVELOPE_COLUMNS, OutboxEvent, OutboxEventQuerySet, envelope
from outbox_app.sealing import open_sealed
from outbox_app.upcasting import stored_names

# pg_advisory_xact_lock key serializing the relays' publication commits (an arbitrary constant of this app).
LOG_LOCK = 0x6F7574626F786C67  # "outboxlg"

PRIMARY = "default"


class UnknownCursor(LookupError):
    """The cursor names no event of the log: never published, or pruned since."""


@dataclass(frozen=True, slots=True)
class LogEntry:
    position: int
    published_at: datetime
    envelope: dict[str, Any]

    @property
    def event_id(self) -> str:
        return str(self.envelope["event_id"])


@dataclass(frozen=True)
class LogPage:
    entries: list[LogEntry]
    # More entries of the asked types wait after this page.
    has_more: bool
    # Where to read on from: the last entry's event, or, once the page reached the end of the log, the last event of
    # the log whatever its type (so a reader of a few types does not scan the same other events again). None only
    # while the log is empty and no cursor was given.
    next_after: str | None
    next_position: int


def mark_published_in_log_order(event_ids: Sequence[UUID]) -> None:
    """Mark these events published and give them the next log positions, in this order.

    Call it as the last statement of the relay's transaction: on PostgreSQL it takes LOG_LOCK, which every relay's
    publication waits for until this transaction commits.
    """
    if not event_ids:
        return
    if connection.vendor == "postgresql":
        table = OutboxEvent._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOG_LOCK])
            # A statement of its own after the lock, so its snapshot sees every position committed before it.
            cursor.execute(
                f"UPDATE {table} AS o SET published_at = statement_timestamp(), attempts = o.attempts + 1,"
                " next_attempt_at = NULL, last_error = '', log_position = head.position + u.ord"
                " FROM unnest(%s::uuid[]) WITH ORDINALITY AS u(event_id, ord),"
                f" (SELECT coalesce(max(log_position), 0) AS position FROM {table}) AS head"
                " WHERE o.event_id = u.event_id",
                ["{" + ",".join(map(str, event_ids)) + "}"],
            )
        return
    # Any other database (the embedded SQLite): its transactions take the one write lock when they begin.
    head = OutboxEvent.objects.aggregate(head=Max("log_position"))["head"] or 0
    for offset, event_id in enumerate(event_ids, start=1):
        OutboxEvent.objects.filter(event_id=event_id).update(
            published_at=Now(),
            attempts=F("attempts") + 1,
            next_attempt_at=None,
            last_error="",
            log_position=head + offset,
        )


def head_position() -> int:
    """The highest position given so far (0 for an empty log): where a reader that wants only new events starts."""
    return _logged().aggregate(head=Max("log_position"))["head"] or 0


def in_log(versions: Sequence[tuple[str, str, int]]) -> bool:
    """Whether each (aggregate type, aggregate id, version) is in the log (published), e.g. a consistency token's."""
    wanted = set(versions)
    if not wanted:
        return True
    which = Q()
    for aggregate_type, aggregate_id, version in wanted:
        which |= Q(aggregate_type=aggregate_type, aggregate_id=aggregate_id, aggregate_version=version)
    return _logged().filter(which).count() == len(wanted)


def _logged() -> OutboxEventQuerySet:
    return OutboxEvent.objects.using(PRIMARY).filter(log_position__isnull=False)


def read_events(event_ids: Sequence[UUID | str]) -> dict[str, dict[str, Any]]:
    """These events' envelopes as the log's readers see them (current schema, personal data opened), by event id."""
    rows = (
        OutboxEvent.objects.using(PRIMARY)
        .filter(event_id__in=list(event_ids))
        .with_envelope_keys()
        .values_list(*ENVELOPE_COLUMNS)
    )
    return {sent["event_id"]: sent for sent in open_sealed([envelope(*columns) for columns in rows])}


def read_log(
    *,
    after: UUID | str | None = None,
    after_position: int | None = None,
    event_types: Sequence[str] = (),
    limit: int,
) -> LogPage:
    """Published events after a cursor, in log order: `after` an event id, or `after_position` a position.

    Only events of `event_types` when given. Reads the primary: a replica may not have the cursor's event yet.
    Raises UnknownCursor when `after` names no event of the log.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    logged = _logged()
    start = after_position or 0
    if after is not None:
        found = logged.filter(event_id=after).values_list("log_position", flat=True).first()
        if found is None:
            raise UnknownCursor(str(after))
        start = found
    # The head first: every position up to it is final (positions become visible as a prefix), so a page bounded by
    # it that comes back short has seen everything of its types up to the head.
    head = logged.order_by("-log_position").values_list("log_position", "event_id").first()
    head_position = 0 if head is None else int(head[0] or 0)
    if head is None or head_position <= start:
        return LogPage(
            entries=[], has_more=False, next_after=None if after is None else str(after), next_position=start
        )
    rows = logged.filter(log_position__gt=start, log_position__lte=head_position)
    if event_types:
        # A type's rows include those stored under its older names (they are read upcast to it).
        rows = rows.filter(event_type__in=stored_names(event_types))
    found_rows = list(
        rows.order_by("log_position")
        .with_envelope_keys()
        .values_list(*ENVELOPE_COLUMNS, "log_position", "published_at")[: limit + 1]
    )
    opened = open_sealed([envelope(*columns) for *columns, _, _ in found_rows])
    entries = [
        LogEntry(position, published_at, sent)
        for (*_, position, published_at), sent in zip(found_rows, opened, strict=True)
    ]
    if len(entries) > limit:
        last = entries[limit - 1]
        return LogPage(entries=entries[:limit], has_more=True, next_after=last.event_id, next_position=last.position)
    return LogPage(entries=entries, has_more=False, next_after=str(head[1]), next_position=head_position)
