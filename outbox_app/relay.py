"""The relay: claim a batch of unpublished events, publish it to the bus, mark it published.

One transaction per batch: claim (FOR UPDATE SKIP LOCKED, in created_at order), publish, mark published. A relay
killed anywhere in between leaves its batch unpublished and unlocked, and the next run publishes it again
(consumers dedupe by event id). Because claimed rows stay locked until the commit, any number of relays run side
by side without marking an event twice. The marking comes last and gives the events their log positions under a
lock held until the commit, so positions follow the order in which batches commit (outbox_app/log.py).

Per-aggregate order: an aggregate's events are published in version order, each only once the version before it
is published or in the same batch. An event held back because an earlier version failed (backing off, or parked
as dead) is deferred until that version's next attempt, so held events never fill the batches behind them.

Failures: a broker outage (kombu OperationalError) fails the whole batch: attempts go up and the events are due again
after OUTBOX_OUTAGE_RETRY_SECONDS, however long the outage, and an outage never parks an event as dead, since it is no
fault of the event. Any other error is a rejection of
the event itself: it is isolated by publishing event by event, and after OUTBOX_MAX_ATTEMPTS it is parked
(dead_at set), never dropped; an operator can requeue it.
"""

import functools
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import structlog
from django.conf import settings
from django.db import connection, transaction
from django.db.models import BooleanField, DateTimeField, ExpressionWrapper, Q
from django.db.models.expressions import RawSQL
from django.db.models.functions import Now
from django.utils import timezone

import sqlkit
from observability import tracing
from outbox_app import metrics, pacing, registry
from outbox_app.bus import BrokerUnavailable, Publisher, bus_publisher, confirm_sent
from outbox_app.log import mark_published_in_log_order
from outbox_app.models import ENVELOPE_COLUMNS, OutboxEvent, envelope
from outbox_app.sealing import open_sealed

log = structlog.get_logger(__name__)

AggregateKey = tuple[str, str]
MAX_ERROR_LENGTH = 2000


@dataclass(frozen=True, slots=True)
class ClaimedEvent:
    """A claimed row as the relay uses it: what it decides with, and the envelope it sends (built once)."""

    event_id: UUID
    event_type: str
    aggregate_type: str
    aggregate_id: str
    aggregate_version: int
    attempts: int
    envelope: dict[str, Any]

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> "ClaimedEvent":
        """From a row of CLAIM_COLUMNS."""
        *columns, traceparent, attempts = row
        event_id, _, _, aggregate_type, aggregate_id, aggregate_version = columns[:6]
        sent = envelope(*columns, traceparent=traceparent)
        # Routed by the type it is sent as: a row stored under an older name goes to the current name's subscribers.
        return cls(event_id, sent["event_type"], aggregate_type, aggregate_id, aggregate_version, attempts, sent)


CLAIM_COLUMNS = (*ENVELOPE_COLUMNS, "traceparent", "attempts")


def aggregate_key(event: ClaimedEvent) -> AggregateKey:
    return event.aggregate_type, event.aggregate_id


@dataclass(frozen=True)
class RelayReport:
    claimed: int = 0
    published: int = 0
    failed: int = 0
    dead: int = 0
    held: int = 0
    deferred: int = 0  # of the held events, those deferred behind a failed earlier version
    broker_down: bool = False

    def __add__(self, other: "RelayReport") -> "RelayReport":
        return RelayReport(
            claimed=self.claimed + other.claimed,
            published=self.published + other.published,
            failed=self.failed + other.failed,
            dead=self.dead + other.dead,
            held=self.held + other.held,
            deferred=self.deferred + other.deferred,
            broker_down=self.broker_down or other.broker_down,
        )

    @property
    def moved_on(self) -> bool:
        """Whether the next batch will differ from this one (every claimed event held only by others: no)."""
        return bool(self.published or self.failed or self.deferred)


@dataclass(frozen=True)
class Predecessor:
    """The unpublished version just below the lowest version of an aggregate in a batch."""

    dead: bool
    next_attempt_at: datetime | None

    def failed(self, now: datetime) -> bool:
        return self.dead or (self.next_attempt_at is not None and self.next_attempt_at > now)


@dataclass(frozen=True)
class Failure:
    event: ClaimedEvent
    error: Exception
    outage: bool


@dataclass
class PublishOutcome:
    published: list[ClaimedEvent] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    held: list[ClaimedEvent] = field(default_factory=list)


@tracing.traced("outbox relay")
def relay_once(*, batch_size: int | None = None, publish: Publisher | None = None) -> RelayReport:
    """Relay one batch; `publish` replaces the bus (by default a fail-fast connection to the Celery broker)."""
    batch_size = batch_size or settings.OUTBOX_BATCH_SIZE
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost:
            _set_up_the_relays_transaction()
        claimed = _claim(batch_size)
        if not claimed:
            return RelayReport()
        waiting_on = _unpublished_predecessors(claimed)
        ready, held = release_in_order(claimed, waiting_on)
        with _publisher(publish) as send, tracing.relaying([event.envelope for event in ready]):
            outcome = confirmed(publish_in_order(ready, send))
        dead = _record_failures(outcome.failures)
        deferred = _defer(held, waiting_on, outcome)
        # Last, just before the commit: it holds the log's position lock until then (outbox_app/log.py).
        mark_published_in_log_order([event.event_id for event in outcome.published])
    pacing.count_relayed(len(outcome.published))
    report = RelayReport(
        claimed=len(claimed),
        published=len(outcome.published),
        failed=len(outcome.failures),
        dead=dead,
        held=len(held) + len(outcome.held),
        deferred=deferred,
        broker_down=any(f.outage for f in outcome.failures),
    )
    tracing.annotate(**{f"relay.{name}": value for name, value in report.__dict__.items()})
    metrics.record_relay(
        published=report.published,
        outages=sum(f.outage for f in outcome.failures),
        rejections=sum(not f.outage for f in outcome.failures),
        dead=dead,
    )
    # One line per batch, naming every correlation id in it: one grep follows a command through the relay.
    log.info(
        "outbox.relay_batch",
        **report.__dict__,
        correlation_ids=sorted({str(e.envelope["correlation_id"]) for e in outcome.published}),
    )
    return report


def relay_until_drained(
    *, batch_size: int | None = None, max_batches: int = 1000, max_seconds: float | None = None
) -> RelayReport:
    """Relay batches until one comes back short, the broker is down, a batch changes nothing, or time is up."""
    batch_size = batch_size or settings.OUTBOX_BATCH_SIZE
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    totals = RelayReport()
    # One broker connection for the whole drain (opened on the first publish): connecting and declaring the queue
    # cost as much as sending a batch. An outage ends the drain, so a broken connection is never used twice.
    with bus_publisher() as publish:
        for _ in range(max_batches):
            report = relay_once(batch_size=batch_size, publish=publish)
            totals += report
            if drained(report, batch_size):
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
    return totals


def drained(report: RelayReport, batch_size: int) -> bool:
    """Whether to stop relaying for now: the batch came back short, the broker is down, or nothing moved."""
    return report.claimed < batch_size or report.broker_down or not report.moved_on


def _set_up_the_relays_transaction() -> None:
    """On PostgreSQL, in one round trip: let this transaction's commit return before its WAL is flushed
    (synchronous_commit off), and let the claim read the unpublished rows' partial index in order (no bitmap scans).

    A database crash can then lose the last fraction of a second of commits, and with them only marks and failure
    counts: the events are unpublished again and published again (at least once, consumers dedupe). WAL is flushed
    in order, so a later batch is never kept without an earlier one and per-aggregate order holds.

    The partial index keeps the entries of published rows until a vacuum removes them (on a busy outbox, thousands
    between two autovacuum runs; on a server with autovacuum off, such as this machine's, all of them). The planner
    estimated a few rows and read the index as a bitmap: every claim visited the row of every such entry (3.6 ms,
    1,037 pages, for an empty outbox behind 16,000 published rows). An ordered index scan stops after the batch
    and marks the entries of rows no transaction can see any more as dead as it passes them: the next claim skips
    them (0.1 ms, 45 pages). SET LOCAL: the settings end with the transaction, whatever else uses the connection;
    and only in a transaction of the relay's own (never in a caller's, whose commit and plans it would change).
    """
    dialect = sqlkit.dialect()
    statements = [dialect.commit_without_waiting_for_disk(), dialect.without_bitmap_scans()]
    sqlkit.send([statement for statement in statements if statement is not None])


def _claim(batch_size: int) -> list[ClaimedEvent]:
    # Kept plain on purpose: an ordered scan of the partial index on created_at that stops after batch_size
    # rows, whatever the planner's statistics say. A sort key the index lacks (a tie-breaker) or a correlated
    # condition (such as "no failed earlier version") lets the planner, when its statistics lag a burst of
    # events, read and sort the whole backlog for every batch. Ties on created_at need no order: versions of
    # one aggregate are ordered by release_in_order. Only the columns the relay uses, as tuples: building model
    # objects (and decoding the metadata) cost more than the query.
    sql, params = _claim_sql(batch_size)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = sqlkit.decode(OutboxEvent, CLAIM_COLUMNS, cursor.fetchall(), plain=_METADATA_KEYS)
    claimed = [ClaimedEvent.from_row(row) for row in rows]
    # Personal data goes on the bus opened (consumers have no keys); the log keeps it sealed.
    opened = open_sealed([event.envelope for event in claimed])
    return [
        event if sent is event.envelope else replace(event, envelope=sent)
        for event, sent in zip(claimed, opened, strict=True)
    ]


_METADATA_KEYS = ("correlation_id", "causation_id", "traceparent")


@functools.lru_cache(maxsize=16)
def _claim_sql(batch_size: int) -> tuple[str, tuple[Any, ...]]:
    """The claim's SQL as the ORM compiles it, once per batch size: building and compiling the query each time
    cost about three times what running it did (docs/benchmarks.md, "Measured choices in the code")."""
    queryset = (
        OutboxEvent.objects.pending()
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=Now()))
        .select_for_update(skip_locked=True)
        .order_by("created_at")
        .with_envelope_keys()
        .values_list(*CLAIM_COLUMNS)[:batch_size]
    )
    sql, params = queryset.query.sql_with_params()
    return sql, tuple(params)


def _unpublished_predecessors(claimed: list[ClaimedEvent]) -> dict[AggregateKey, Predecessor]:
    """For each aggregate in the batch, the version just below its lowest one there, if that is unpublished.

    Versions are published in order, so when that version is published (or pruned, or there is none) every
    earlier one is too. The lookups are equalities on the unique (type, id, version) index.
    """
    lowest: dict[AggregateKey, int] = {}
    for event in claimed:
        key = aggregate_key(event)
        lowest[key] = min(lowest.get(key, event.aggregate_version), event.aggregate_version)
    wanted = [(aggregate_type, aggregate_id, version - 1) for (aggregate_type, aggregate_id), version in lowest.items()]
    wanted = [(aggregate_type, aggregate_id, version) for aggregate_type, aggregate_id, version in wanted if version]
    if not wanted:
        return {}
    rows = _predecessor_rows(wanted)
    return {
        (aggregate_type, aggregate_id): Predecessor(dead_at is not None, next_attempt_at)
        for aggregate_type, aggregate_id, dead_at, next_attempt_at in rows
    }


PredecessorRow = tuple[str, str, datetime | None, datetime | None]
_PREDECESSOR_COLUMNS = ["aggregate_type", "aggregate_id", "dead_at", "next_attempt_at"]


def _predecessor_rows(wanted: list[tuple[str, str, int]]) -> list[PredecessorRow]:
    """Every lookup in one statement: the keys as rows (on PostgreSQL one JSON parameter, whose text json.dumps
    writes in C where the client-side binding would quote an array element by element in Python), matched on
    the unique (type, id, version) index."""
    statements = sqlkit.select(
        OutboxEvent,
        _PREDECESSOR_COLUMNS,
        keys_in=(("aggregate_type", "aggregate_id", "aggregate_version"), wanted),
        condition="published_at IS NULL",
    )
    rows = [row for outcome in sqlkit.send(statements) for row in outcome.rows]
    return sqlkit.decode(OutboxEvent, _PREDECESSOR_COLUMNS, rows)


def release_in_order(
    claimed: list[ClaimedEvent], waiting_on: dict[AggregateKey, Predecessor]
) -> tuple[list[ClaimedEvent], list[ClaimedEvent]]:
    """Split a claimed batch into the events to publish, in publication order, and the events held back.

    An aggregate waiting on an unpublished earlier version outside the batch (claimed by another relay, backing
    off or dead) has all of its events held; otherwise its consecutive versions from the lowest are released,
    up to the first gap. Released events keep the claim order across aggregates and are in version order within
    each aggregate.
    """
    by_aggregate: dict[AggregateKey, list[ClaimedEvent]] = defaultdict(list)
    for event in claimed:
        by_aggregate[aggregate_key(event)].append(event)
    in_version_order: dict[AggregateKey, list[ClaimedEvent]] = {}
    for key, events in by_aggregate.items():
        run: list[ClaimedEvent] = []
        if key not in waiting_on:
            for event in sorted(events, key=lambda e: e.aggregate_version):
                if run and event.aggregate_version != run[-1].aggregate_version + 1:
                    break
                run.append(event)
        in_version_order[key] = run
    released = {event.event_id for run in in_version_order.values() for event in run}
    next_of: dict[AggregateKey, int] = defaultdict(int)
    ready = []
    for event in claimed:
        if event.event_id in released:
            key = aggregate_key(event)
            ready.append(in_version_order[key][next_of[key]])
            next_of[key] += 1
    held = [event for event in claimed if event.event_id not in released]
    return ready, held


def publish_in_order(
    events: list[ClaimedEvent],
    send: Publisher,
    subscribers_for: Callable[[str], list[str]] = registry.subscribers_for,
) -> PublishOutcome:
    """Send the events to their subscribers, one message per subscriber task, in the given order.

    A rejected message is retried event by event to find the poison event; once an event is rejected, the later
    events of its aggregate are sent nowhere else and held. An event counts as published when every subscriber
    has it and every earlier event of its aggregate in the batch is published; an outage fails the whole batch.
    """
    by_task: dict[str, list[ClaimedEvent]] = defaultdict(list)
    for event in events:
        for task_name in subscribers_for(event.event_type):
            by_task[task_name].append(event)
    delivered: Counter[UUID] = Counter()
    rejected: dict[UUID, Failure] = {}
    blocked: set[AggregateKey] = set()
    outage: BrokerUnavailable | None = None

    def deliver(task_name: str, batch: list[ClaimedEvent]) -> None:
        send(task_name, [event.envelope for event in batch])
        delivered.update(event.event_id for event in batch)

    for task_name, subscribed in by_task.items():
        sendable = [event for event in subscribed if aggregate_key(event) not in blocked]
        if not sendable:
            continue
        try:
            deliver(task_name, sendable)
            continue
        except BrokerUnavailable as error:
            outage = error
            break
        except Exception:
            log.warning("outbox.batch_rejected", task=task_name, size=len(sendable), exc_info=True)
        for event in sendable:
            if aggregate_key(event) in blocked:
                continue
            try:
                deliver(task_name, [event])
            except BrokerUnavailable as error:
                outage = error
                break
            except Exception as error:
                rejected[event.event_id] = Failure(event, error, outage=False)
                blocked.add(aggregate_key(event))
        if outage is not None:
            break

    if outage is not None:
        log.warning("outbox.broker_unavailable", error=str(outage), batch=len(events))
        return PublishOutcome(failures=[rejected.get(e.event_id) or Failure(e, outage, outage=True) for e in events])
    outcome = PublishOutcome(failures=list(rejected.values()))
    stopped: set[AggregateKey] = set()
    for event in events:
        complete = delivered[event.event_id] == len(subscribers_for(event.event_type))
        if complete and aggregate_key(event) not in stopped:
            outcome.published.append(event)
            continue
        stopped.add(aggregate_key(event))
        if event.event_id not in rejected:
            outcome.held.append(event)
    return outcome


def confirmed(outcome: PublishOutcome) -> PublishOutcome:
    """The outcome once the broker confirmed the messages sent without waiting (outbox_app/bus.py); if it refused
    one or stopped answering, none of the batch's events counts as published: an outage, as a failed send."""
    try:
        confirm_sent()
    except BrokerUnavailable as error:
        log.warning("outbox.broker_unavailable", error=str(error), batch=len(outcome.published))
        outages = [Failure(event, error, outage=True) for event in outcome.published]
        return PublishOutcome(failures=[*outcome.failures, *outages], held=outcome.held)
    return outcome


def backoff(attempts: int) -> timedelta:
    """Exponential: the base after the first failure, doubling after each one, capped."""
    seconds = settings.OUTBOX_BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, settings.OUTBOX_BACKOFF_MAX_SECONDS))


def _parks(failure: Failure) -> bool:
    return not failure.outage and failure.event.attempts + 1 >= settings.OUTBOX_MAX_ATTEMPTS


def _retry_delay(failure: Failure) -> timedelta:
    if failure.outage:
        # Not the event's fault, nor a reason to wait longer the longer the outage lasts: due again at the
        # relay's next run, so the backlog drains as soon as the broker is back.
        return timedelta(seconds=settings.OUTBOX_OUTAGE_RETRY_SECONDS)
    if _parks(failure):
        return timedelta(seconds=settings.OUTBOX_BACKOFF_MAX_SECONDS)
    return backoff(failure.event.attempts + 1)


def _publisher(publish: Publisher | None) -> AbstractContextManager[Publisher]:
    return nullcontext(publish) if publish is not None else bus_publisher()


def _event_id_in(event_ids: list[UUID]) -> RawSQL:
    """event_id IN the list: on PostgreSQL one JSON parameter, not one literal per id to bind."""
    sql, params = sqlkit.where_in(OutboxEvent, "event_id", event_ids)
    return RawSQL(sql, params, output_field=BooleanField())


def _from_now(delay: timedelta) -> ExpressionWrapper:
    """A time on the database clock, which the claim compares next_attempt_at with."""
    return ExpressionWrapper(Now() + delay, output_field=DateTimeField())


def _record_failures(failures: list[Failure]) -> int:
    """Count the attempt, then back off or park; the number parked.

    Failures sharing an attempt count and an error are one UPDATE, so a batch failed by an outage costs one.
    """
    groups: dict[tuple[int, str, bool], list[Failure]] = defaultdict(list)
    for failure in failures:
        error = f"{type(failure.error).__name__}: {failure.error}"[:MAX_ERROR_LENGTH]
        groups[(failure.event.attempts + 1, error, _parks(failure))].append(failure)
    dead = 0
    for (attempts, error, parks), group in groups.items():
        OutboxEvent.objects.filter(_event_id_in([f.event.event_id for f in group])).update(
            attempts=attempts,
            last_error=error,
            next_attempt_at=None if parks else _from_now(_retry_delay(group[0])),
            dead_at=Now() if parks else None,
        )
        if parks:
            dead += len(group)
            for failure in group:
                log.error("outbox.event_dead", event_id=str(failure.event.event_id), attempts=attempts, error=error)
    return dead


def _defer(held: list[ClaimedEvent], waiting_on: dict[AggregateKey, Predecessor], outcome: PublishOutcome) -> int:
    """Defer held events that wait on a failed earlier version until that version's next attempt.

    Behind a dead version, they are looked at again after OUTBOX_BACKOFF_MAX_SECONDS (requeueing it releases
    them at once). Events held only because another relay has their predecessor are left due: that relay
    commits in a moment. Returns how many were deferred.
    """
    now = timezone.now()
    until: dict[datetime | timedelta, list[UUID]] = defaultdict(list)
    for event in held:
        predecessor = waiting_on.get(aggregate_key(event))
        if predecessor is None or not predecessor.failed(now):
            continue
        if predecessor.dead or predecessor.next_attempt_at is None:
            until[timedelta(seconds=settings.OUTBOX_BACKOFF_MAX_SECONDS)].append(event.event_id)
        else:
            until[predecessor.next_attempt_at].append(event.event_id)
    rejected = {aggregate_key(f.event): f for f in outcome.failures if not f.outage}
    for event in outcome.held:
        failure = rejected.get(aggregate_key(event))
        if failure is not None:
            until[_retry_delay(failure)].append(event.event_id)
    for when, event_ids in until.items():
        next_attempt_at = _from_now(when) if isinstance(when, timedelta) else when
        OutboxEvent.objects.filter(_event_id_in(event_ids)).update(next_attempt_at=next_attempt_at)
    return sum(len(event_ids) for event_ids in until.values())
