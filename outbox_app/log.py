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

The log lives in two tables: the outbox (pending, dead and recently published events) and the archive
(`ArchivedEvent`: published events `prune_outbox` moved out of the hot table, outbox_app/archive.py). This module
is the one reader of both, and every envelope read from the log is built here (`_envelope_of`):
  read_log()           in log order, by cursor (the event feed, the webhooks' safety net)
  read_by_aggregate()  each aggregate's versions in order, one aggregate after another (replay, verify, catch-up)
A move to the archive is one statement (DELETE ... RETURNING into INSERT), so a snapshot sees each event in
exactly one of the two tables, and the next position is the highest of both (an archived head still counts).
"""

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import connection
from django.db.models import F, Max, Q
from django.db.models.fields.json import KT
from django.db.models.functions import Now

import sqlkit
from outbox_app.models import ENVELOPE_COLUMNS, ArchivedEvent, LogQuerySet, OutboxEvent, OutboxEventQuerySet, envelope
from outbox_app.sealing import open_sealed
from outbox_app.upcasting import stored_names

# pg_advisory_xact_lock key serializing the relays' publication commits (an arbitrary constant of this app).
LOG_LOCK = 0x6F7574626F786C67  # "outboxlg"

PRIMARY = "default"


class UnknownCursor(LookupError):
    """The cursor names no published event of the log (the outbox or its archive)."""


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
        table, archive = OutboxEvent._meta.db_table, ArchivedEvent._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOG_LOCK])
            # A statement of its own after the lock, so its snapshot sees every position committed before it.
            cursor.execute(
                f"UPDATE {table} AS o SET published_at = statement_timestamp(), attempts = o.attempts + 1,"
                " next_attempt_at = NULL, last_error = '', log_position = head.position + u.ord"
                " FROM unnest(%s::uuid[]) WITH ORDINALITY AS u(event_id, ord),"
                " (SELECT greatest(coalesce(max(log_position), 0),"
                f" (SELECT coalesce(max(log_position), 0) FROM {archive})) AS position FROM {table}) AS head"
                " WHERE o.event_id = u.event_id",
                ["{" + ",".join(map(str, event_ids)) + "}"],
            )
        return
    # Any other database (the embedded SQLite): its transactions take the one write lock when they begin.
    head = head_position()
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
    return max(
        _logged().aggregate(head=Max("log_position"))["head"] or 0,
        _archived().aggregate(head=Max("log_position"))["head"] or 0,
    )


def in_log(versions: Sequence[tuple[str, str, int]]) -> bool:
    """Whether each (aggregate type, aggregate id, version) is in the log (published), e.g. a consistency token's."""
    wanted = set(versions)
    if not wanted:
        return True
    which = Q()
    for aggregate_type, aggregate_id, version in wanted:
        which |= Q(aggregate_type=aggregate_type, aggregate_id=aggregate_id, aggregate_version=version)
    # One statement, so an event moving to the archive meanwhile is counted once.
    found = (
        _logged()
        .filter(which)
        .values_list("event_id")
        .union(_archived().filter(which).values_list("event_id"), all=True)
    )
    return found.count() == len(wanted)


def _logged() -> OutboxEventQuerySet:
    return OutboxEvent.objects.using(PRIMARY).filter(log_position__isnull=False)


def read_events(event_ids: Sequence[UUID | str]) -> dict[str, dict[str, Any]]:
    """These events' envelopes as the log's readers see them (current schema, personal data opened), by event id:
    from the outbox or the archive."""
    ids = list(event_ids)
    rows = [
        columns
        for table in (OutboxEvent.objects.using(PRIMARY), ArchivedEvent.objects.using(PRIMARY))
        for columns in table.filter(event_id__in=ids).with_envelope_keys().values_list(*ENVELOPE_COLUMNS)
    ]
    return {sent["event_id"]: sent for sent in open_sealed([_envelope_of(columns) for columns in rows])}


def _archived() -> LogQuerySet[ArchivedEvent]:
    return ArchivedEvent.objects.using(PRIMARY).all()


def _position_of(event_id: UUID | str) -> int | None:
    # The outbox first: an event moving to the archive between the two reads is then found in one of them.
    for table in (_logged(), _archived()):
        found = table.filter(event_id=event_id).values_list("log_position", flat=True).first()
        if found is not None:
            return int(found)
    return None


def _head() -> tuple[int, str] | None:
    """The last event of the log: (position, event id), in whichever table it is."""
    heads = [
        (int(position or 0), str(event_id))
        for table in (_logged(), _archived())
        for position, event_id in table.order_by("-log_position").values_list("log_position", "event_id")[:1]
    ]
    return max(heads) if heads else None


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
    start = after_position or 0
    if after is not None:
        found = _position_of(after)
        if found is None:
            raise UnknownCursor(str(after))
        start = found
    # The head first: every position up to it is final (positions become visible as a prefix), so a page bounded by
    # it that comes back short has seen everything of its types up to the head.
    head = _head()
    if head is None or head[0] <= start:
        return LogPage(
            entries=[], has_more=False, next_after=None if after is None else str(after), next_position=start
        )
    head_position, head_event = head
    parts = []
    for table in (_logged(), _archived()):
        rows = table.filter(log_position__gt=start, log_position__lte=head_position)
        if event_types:
            # A type's rows include those stored under its older names (they are read upcast to it).
            rows = rows.filter(event_type__in=stored_names(event_types))
        part = rows.with_envelope_keys().values_list(*ENVELOPE_COLUMNS, "log_position", "published_at")
        if connection.features.supports_slicing_ordering_in_compound:
            # Each table's first limit + 1 in order (an index range each), merged in order below.
            part = part.order_by("log_position")[: limit + 1]
        parts.append(part)
    found_rows = list(parts[0].union(parts[1], all=True).order_by("log_position")[: limit + 1])
    opened = open_sealed([_envelope_of(columns) for *columns, _, _ in found_rows])
    entries = [
        LogEntry(position, published_at, sent)
        for (*_, position, published_at), sent in zip(found_rows, opened, strict=True)
    ]
    if len(entries) > limit:
        last = entries[limit - 1]
        return LogPage(entries=entries[:limit], has_more=True, next_after=last.event_id, next_position=last.position)
    return LogPage(entries=entries, has_more=False, next_after=head_event, next_position=head_position)


def _envelope_of(columns: Sequence[Any]) -> dict[str, Any]:
    """The envelope of a log row read as ENVELOPE_COLUMNS (its payload as JSON text when streamed raw)."""
    event = envelope(*columns)
    if isinstance(event["payload"], str | bytes):
        event["payload"] = json.loads(event["payload"])
    return event


# The two ids projections may log are read as text, sparing the decoding of each row's whole metadata.
_METADATA = {"correlation_id": KT("metadata__correlation_id"), "causation_id": KT("metadata__causation_id")}


def log_size(aggregate_types: Sequence[str]) -> int:
    """How many events of these aggregate types the log holds, outbox and archive (pending and dead included)."""
    return sum(
        table.filter(aggregate_type__in=aggregate_types).count()
        for table in (OutboxEvent.objects.all(), ArchivedEvent.objects.all())
    )


def read_by_aggregate(
    aggregate_types: Sequence[str],
    *,
    only: Any = None,
    leaving_out: Any = None,
    chunk_size: int = 10_000,
    stream: bool = True,
) -> Iterator[dict[str, Any]]:
    """Every event of these aggregate types in the outbox and the archive (the outbox's pending and dead ones
    included), type by type in the given order, each aggregate's versions in order.

    `only` / `leaving_out`: a condition (a Q or an Exists on the log's columns) the events must / must not meet.
    `stream`: a server-side cursor reading `chunk_size` rows per round trip; False fetches all at once (a result
    known to be small). On PostgreSQL each type is one ordered merge of the two tables' unique
    (aggregate_type, aggregate_id, aggregate_version) indexes.
    """
    for aggregate_type in aggregate_types:
        parts = []
        for table in (OutboxEvent.objects.all(), ArchivedEvent.objects.all()):
            rows = table.filter(aggregate_type=aggregate_type)
            if only is not None:
                rows = rows.filter(only)
            if leaving_out is not None:
                rows = rows.exclude(leaving_out)
            parts.append(rows.annotate(**_METADATA).values_list(*ENVELOPE_COLUMNS))
        merged = parts[0].union(parts[1], all=True).order_by("aggregate_id", "aggregate_version")
        chunk: list[dict[str, Any]] = []
        for row in sqlkit.dialect().stream(merged, chunk_size, server_side=stream):
            chunk.append(_envelope_of(row))
            if len(chunk) == chunk_size:
                # Personal data opened a chunk at a time: one key lookup per chunk (outbox_app/sealing.py).
                yield from open_sealed(chunk)
                chunk = []
        yield from open_sealed(chunk)
