"""Applies envelopes to projections exactly once and in per-aggregate order.

A message's events are applied per projection in one transaction (the batch path): hold the projection's lock
(shared), lock the positions of all the batch's aggregates in one statement (version N+1 waits until N is
applied), decide in memory which events apply (contiguous from each position, in version order; the rest are
duplicates or wait on a gap), write their inbox rows in one statement (a duplicate stops there), load and lock
the rows the handlers need in bulk, let the handlers change them, write each table once (the rows that were
missing inserted with their final values: if another worker created one meanwhile, the batch applies again),
and advance the positions and the checkpoint in one statement. Deliveries may repeat and arrive in any order
across workers.

If anything in a batch raises (a poison event), the batch rolls back and its events are applied one by one,
each in its own transaction (apply_once, the per-event path, which parking, retries and the replay's catch-up
use too): the bad event is reported FAILED so the task can retry and, in the end, park it, and the others
apply. Infrastructure errors propagate instead, because an outage is no fault of the events.
"""

import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import structlog
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

import sqlkit
from observability import tracing
from queries_app.envelopes import Envelope
from queries_app.models import AggregatePosition, InboxEntry, ParkedEvent, ProjectionCheckpoint
from queries_app.projection_engine.projection import ApplyContext, Projection, applied_channel
from queries_app.projection_engine.rows import DatabaseRows, RowCreatedMeanwhile, live_table, shadow_table
from queries_app.projections import BY_NAME, PROJECTIONS

log = structlog.get_logger(__name__)

INFRASTRUCTURE_ERRORS = (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError)
# Namespace of the PostgreSQL advisory locks that let a replay stop a projection's appliers while it swaps.
_LOCK_NAMESPACE = 0x52454144


class Outcome(Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    WAITING = "waiting"
    FAILED = "failed"


@dataclass(frozen=True)
class Target:
    """Where an apply writes: the live read model, or the shadow a replay builds beside it."""

    position_key: str
    suffix: str = ""

    @property
    def live(self) -> bool:
        return self.suffix == ""


def live_target(projection: Projection) -> Target:
    return Target(projection.name)


@dataclass(frozen=True)
class Pending:
    """An event a projection could not apply yet: it waits on a gap, or its apply failed."""

    projection: str
    envelope: Envelope
    reason: ParkedEvent.Reason
    error: str = ""


@dataclass
class ProjectionRun:
    applied: int = 0
    duplicates: int = 0
    pending: list[Pending] = field(default_factory=list)

    @property
    def pending_envelopes(self) -> list[Envelope]:
        seen: dict[str, Envelope] = {}
        for item in self.pending:
            seen.setdefault(item.envelope["event_id"], item.envelope)
        return list(seen.values())


AggregateKey = tuple[str, str]


def _aggregate(envelope: Envelope) -> AggregateKey:
    return envelope["aggregate_type"], envelope["aggregate_id"]


def _in_version_order(envelopes: Iterable[Envelope]) -> list[Envelope]:
    return sorted(envelopes, key=lambda e: (e["aggregate_type"], e["aggregate_id"], e["aggregate_version"]))


def _about(envelope: Envelope) -> Any:
    """Any line logged while applying this event carries the command's correlation id."""
    return structlog.contextvars.bound_contextvars(
        correlation_id=envelope.get("correlation_id"), causation_id=envelope["event_id"]
    )


def _apply_all(projection: Projection, ctx: ApplyContext, envelopes: list[Envelope]) -> None:
    """projection.apply() each event, its correlation id bound as _about() does (without a context manager per
    event: binding and resetting the two variables directly costs less; docs/benchmarks.md, "Measured choices")."""
    bind, reset = structlog.contextvars.bind_contextvars, structlog.contextvars.reset_contextvars
    for envelope in envelopes:
        tokens = bind(correlation_id=envelope.get("correlation_id"), causation_id=envelope["event_id"])
        try:
            projection.apply(ctx, envelope)
        finally:
            reset(**tokens)


def project(envelopes: Iterable[Envelope], projections: Sequence[Projection] = PROJECTIONS) -> ProjectionRun:
    """Apply the envelopes to each projection that follows them, each projection in a transaction of its own."""
    run = ProjectionRun()
    ordered = _in_version_order(envelopes)
    for projection in owners_first(projections, {e["aggregate_type"] for e in ordered}):
        followed = [e for e in ordered if e["aggregate_type"] in projection.follows]
        if followed:
            with tracing.span(f"projection {projection.name}", **{"events.count": len(followed)}):
                _project_batch(projection, followed, run)
    if ordered:
        log.info(
            "projection.batch",
            applied=run.applied,
            duplicates=run.duplicates,
            pending=len(run.pending),
            correlation_ids=sorted({str(e.get("correlation_id")) for e in ordered}),
        )
    return run


def owners_first(projections: Sequence[Projection], aggregate_types: set[str]) -> list[Projection]:
    """The projections whose own read model is about these aggregate types first (an order's events reach the
    orders projection before the customers projection counts them; a customer's reach the customers projection
    before the orders projection copies them), the others after, each group in its given order: a read waiting on
    a projection (a STRONG one, or one with a consistency token) waits for its own apply, not for the others'."""
    return sorted(projections, key=lambda projection: not aggregate_types.intersection(projection.owns))


# --- The batch path ------------------------------------------------------------------------------------------


class _InboxAheadOfPosition(RuntimeError):
    """An event the positions let through is already in the inbox: the per-event path decides what to do."""


@dataclass
class _Batch:
    applied: list[Envelope] = field(default_factory=list)
    duplicates: int = 0
    waiting: list[Envelope] = field(default_factory=list)
    # whether the projection had parked events when the batch finished (its positions locked)
    anything_parked: bool = False


def _project_batch(projection: Projection, envelopes: list[Envelope], run: ProjectionRun) -> None:
    """Apply a projection's events of one message in one transaction; one by one if that raises."""
    try:
        batch = _apply_batch_again_if_rows_appeared(projection, envelopes)
    except INFRASTRUCTURE_ERRORS:
        raise
    except Exception:
        log.warning("projection.batch_failed", projection=projection.name, events=len(envelopes), exc_info=True)
        for envelope in envelopes:
            with _about(envelope):
                _project_one(projection, envelope, run)
        return
    unparked = _unpark_after(projection, batch.applied) if batch.anything_parked else 0
    run.applied += len(batch.applied) + unparked
    run.duplicates += batch.duplicates
    run.pending += [Pending(projection.name, envelope, ParkedEvent.Reason.GAP) for envelope in batch.waiting]


# A batch that found rows missing which another worker then created applies again: they exist by then.
_APPLY_AGAIN = 3


def _apply_batch_again_if_rows_appeared(projection: Projection, envelopes: list[Envelope]) -> _Batch:
    for _ in range(_APPLY_AGAIN):
        try:
            return _apply_batch(projection, envelopes)
        except RowCreatedMeanwhile:
            log.info("projection.batch_again", projection=projection.name, events=len(envelopes))
    return _apply_batch(projection, envelopes)


def _apply_batch(projection: Projection, envelopes: list[Envelope]) -> _Batch:
    """`envelopes` in version order per aggregate."""
    batch = _Batch()
    with transaction.atomic():
        hold_projection_lock(projection.name, exclusive=False)
        positions = _lock_positions(projection.name, envelopes)
        versions = {key: position.version for key, position in positions.items()}
        for envelope in envelopes:
            current = versions.get(_aggregate(envelope))
            version = envelope["aggregate_version"]
            if current is not None and version <= current:
                batch.duplicates += 1
            elif current is None or version > current + 1:
                batch.waiting.append(envelope)
            else:
                batch.applied.append(envelope)
                versions[_aggregate(envelope)] = version
        if not batch.applied:
            return batch
        _record_batch_in_inbox(projection.name, batch.applied)
        rows = DatabaseRows(live_table)
        rows.prefetch(
            (need for envelope in batch.applied for need in projection.needs(envelope)), lock_order=projection.models
        )
        _apply_all(projection, ApplyContext(rows=rows, on_commit=transaction.on_commit), batch.applied)
        rows.flush()
        batch.anything_parked = _finish_batch(
            projection.name,
            [(position, versions[key]) for key, position in positions.items() if versions[key] != position.stored],
            batch.applied,
        )
    return batch


def _finish_batch(name: str, moved: list[tuple["_Position", int]], applied: list[Envelope]) -> bool:
    """Set the positions that moved, add the batch to the checkpoint, notify the reads waiting on the projection
    (at the commit), and say whether the projection has parked events (usually none): one round trip on
    PostgreSQL.

    Asked while the batch's positions are locked, so a parked successor it does not see was parked after this
    and is applied by park()'s own attempt, which waits on the position until this commits.
    """
    outcomes = sqlkit.send(
        [
            # bulk_update's CASE WHEN costs more to build in Python than the statement costs to run.
            *sqlkit.update_many(AggregatePosition, "id", ["version"], [(p.id, version) for p, version in moved]),
            _checkpoint_upsert(name, applied[-1], len(applied)),
            *_notify_waiting_reads(name),
            sqlkit.exists(ParkedEvent, projection=name),
        ]
    )
    return bool(outcomes[-1].rows)


@dataclass
class _Position:
    id: int
    # the position the batch starts from
    version: int
    # the version its row holds now (a new position is inserted at the version the batch will leave it at)
    stored: int


def _new_positions(envelopes: list[Envelope]) -> dict[AggregateKey, int]:
    """For each aggregate whose version 1 is in `envelopes` (in version order per aggregate): the version its
    position reaches if it is new, the end of the unbroken run of versions from 1."""
    reached: dict[AggregateKey, int] = {}
    for envelope in envelopes:
        aggregate, version = _aggregate(envelope), envelope["aggregate_version"]
        if version == 1:
            reached[aggregate] = 1
        elif reached.get(aggregate) == version - 1:
            reached[aggregate] = version
    return reached


def _lock_positions(key: str, envelopes: list[Envelope]) -> dict[AggregateKey, _Position]:
    """The positions of the batch's aggregates, locked: version-1 events create theirs first (so concurrent
    first events queue on it), then one statement locks the others in key order.

    A new position is inserted at once at the version the batch will leave it at (the decision in _apply_batch
    reaches the same one from 0), so it needs no update later; if the batch does not commit, neither does it.
    """
    positions: dict[AggregateKey, _Position] = {}
    reached = _new_positions(envelopes)
    first = sorted(reached)
    # The rows this inserts are new and already locked by this transaction: no need to read them back.
    created = sqlkit.insert(
        AggregatePosition,
        [(t, i, reached[t, i]) for t, i in first],
        columns=["aggregate_type", "aggregate_id", "version"],
        constants={"projection": key},
        on_conflict=sqlkit.OnConflict(target=("projection", "aggregate_type", "aggregate_id")),
        returning=["id", "aggregate_type", "aggregate_id"],
    )
    for outcome in sqlkit.send(created):
        positions.update({(t, i): _Position(pk, 0, reached[t, i]) for pk, t, i in outcome.rows})
    ids_by_type: dict[str, set[str]] = {}
    for aggregate in map(_aggregate, envelopes):
        if aggregate not in positions:
            ids_by_type.setdefault(aggregate[0], set()).add(aggregate[1])
    for aggregate_type, ids in sorted(ids_by_type.items()):
        # In key order, so that batches with overlapping aggregates queue on the first one they share.
        statements = sqlkit.select(
            AggregatePosition,
            ["id", "aggregate_id", "version"],
            where={"projection": key, "aggregate_type": aggregate_type},
            where_in=("aggregate_id", sorted(ids)),
            order_by=["aggregate_id"],
            lock=True,
        )
        for statement in statements:
            (outcome,) = sqlkit.send([statement])
            positions.update({(aggregate_type, i): _Position(pk, version, version) for pk, i, version in outcome.rows})
    return positions


def _record_batch_in_inbox(projection: str, envelopes: list[Envelope]) -> None:
    """One INSERT ... ON CONFLICT DO NOTHING RETURNING for the batch's inbox entries."""
    statements = sqlkit.insert(
        InboxEntry,
        [(envelope["event_id"],) for envelope in envelopes],
        columns=["event_id"],
        constants={"projection": projection, "processed_at": timezone.now()},
        on_conflict=sqlkit.OnConflict(target=("projection", "event_id")),
        returning=["event_id"],
    )
    inserted = sum(len(outcome.rows) for outcome in sqlkit.send(statements))
    if inserted != len(envelopes):
        raise _InboxAheadOfPosition(f"{len(envelopes) - inserted} of the batch's events are already in the inbox")


def _unpark_after(projection: Projection, applied: list[Envelope]) -> int:
    """Apply the parked successors of the batch's aggregates (the projection has parked events)."""
    parked_here = ParkedEvent.objects.filter(projection=projection.name)
    last = {_aggregate(envelope): envelope for envelope in applied}
    ids = sorted({aggregate_id for _, aggregate_id in last})
    parked: set[AggregateKey] = set()
    for start in range(0, len(ids), 500):
        parked.update(
            parked_here.filter(aggregate_id__in=ids[start : start + 500])
            .values_list("aggregate_type", "aggregate_id")
            .distinct()
        )
    return sum(unpark_successors(projection, last[key]) for key in sorted(parked & last.keys()))


# --- The per-event path ----------------------------------------------------------------------------------------


def _project_one(projection: Projection, envelope: Envelope, run: ProjectionRun) -> None:
    outcome, error = apply_once(projection, envelope)
    if outcome is Outcome.APPLIED:
        run.applied += 1 + unpark_successors(projection, envelope)
    elif outcome is Outcome.DUPLICATE:
        run.duplicates += 1
    elif outcome is Outcome.WAITING:
        run.pending.append(Pending(projection.name, envelope, ParkedEvent.Reason.GAP))
    else:
        run.pending.append(Pending(projection.name, envelope, ParkedEvent.Reason.FAILED, error))


def apply_once(projection: Projection, envelope: Envelope, target: Target | None = None) -> tuple[Outcome, str]:
    target = target or live_target(projection)
    try:
        with transaction.atomic():
            return _apply_in_transaction(projection, envelope, target), ""
    except INFRASTRUCTURE_ERRORS:
        raise
    except Exception as error:
        log.warning(
            "projection.apply_failed",
            projection=projection.name,
            event_id=envelope["event_id"],
            event_type=envelope["event_type"],
            exc_info=True,
        )
        return Outcome.FAILED, "".join(traceback.format_exception(error))[-4000:]


def _apply_in_transaction(projection: Projection, envelope: Envelope, target: Target) -> Outcome:
    if target.live:
        hold_projection_lock(projection.name, exclusive=False)
    position = _lock_position(target.position_key, envelope)
    current = position.version if position else 0
    version = envelope["aggregate_version"]
    if version <= current:
        return Outcome.DUPLICATE
    if position is None or version > current + 1:
        return Outcome.WAITING
    if target.live and not _record_in_inbox(projection.name, envelope["event_id"]):
        log.warning("projection.inbox_ahead_of_position", projection=projection.name, event_id=envelope["event_id"])
        return Outcome.DUPLICATE
    rows = DatabaseRows(live_table if target.live else shadow_table)
    on_commit = transaction.on_commit if target.live else (lambda callback: None)
    projection.apply(ApplyContext(rows=rows, suffix=target.suffix, on_commit=on_commit), envelope)
    rows.flush()
    position.version = version
    position.save(update_fields=["version"])
    if target.live:
        # Last, so the checkpoint row (one per projection) is locked for the shortest time.
        _advance_checkpoint(projection.name, envelope)
    return Outcome.APPLIED


def hold_projection_lock(name: str, *, exclusive: bool) -> None:
    """Appliers hold the projection's lock shared; a replay takes it exclusively to swap (PostgreSQL only: SQLite
    needs none, its writers are serialized). Transaction-scoped: released at commit or rollback."""
    lock = sqlkit.dialect().named_lock(_LOCK_NAMESPACE, name, shared=not exclusive)
    if lock is not None:
        sqlkit.send([lock])


def _lock_position(key: str, envelope: Envelope) -> AggregatePosition | None:
    """The aggregate's position, locked; version 1 creates it (at 0) so concurrent first events queue on it."""
    positions = AggregatePosition.objects.select_for_update().filter(
        projection=key, aggregate_type=envelope["aggregate_type"], aggregate_id=envelope["aggregate_id"]
    )
    position = positions.first()
    if position is None and envelope["aggregate_version"] == 1:
        AggregatePosition.objects.bulk_create(
            [
                AggregatePosition(
                    projection=key,
                    aggregate_type=envelope["aggregate_type"],
                    aggregate_id=envelope["aggregate_id"],
                    version=0,
                )
            ],
            ignore_conflicts=True,
        )
        position = positions.first()
    return position


def _record_in_inbox(projection: str, event_id: str) -> bool:
    """Insert the inbox entry; False when the event was already processed by this projection."""
    statements = sqlkit.insert(
        InboxEntry,
        [(projection, event_id, timezone.now())],
        columns=["projection", "event_id", "processed_at"],
        on_conflict=sqlkit.OnConflict(target=("projection", "event_id")),
    )
    return sqlkit.send(statements)[0].rowcount == 1


def _advance_checkpoint(name: str, envelope: Envelope, applied: int = 1) -> None:
    """Count `applied` more events, `envelope` the last of them: one upsert, so that the first appliers of a
    projection, racing to create its checkpoint, each add their count. The reads waiting on the projection are
    notified at the commit."""
    sqlkit.send([_checkpoint_upsert(name, envelope, applied), *_notify_waiting_reads(name)])


def _notify_waiting_reads(name: str) -> list[sqlkit.Statement]:
    """The notification that wakes STRONG and read-your-writes reads waiting on the projection, sent when the
    apply commits (queries_app.consistency); nothing where the database has no notifications."""
    statement = sqlkit.dialect().notify(applied_channel(name))
    return [statement] if statement is not None else []


def _checkpoint_upsert(name: str, envelope: Envelope, applied: int) -> sqlkit.Statement:
    (statement,) = sqlkit.insert(
        ProjectionCheckpoint,
        [
            {
                "projection": name,
                "events_applied": applied,
                "last_event_id": envelope["event_id"],
                "last_event_at": parse_datetime(envelope["occurred_at"]),
                "updated_at": timezone.now(),
            }
        ],
        on_conflict=sqlkit.OnConflict(
            target=("projection",), update=("last_event_id", "last_event_at", "updated_at"), add=("events_applied",)
        ),
    )
    return statement


# --- Parking ---------------------------------------------------------------------------------------------------


def park(pending: Pending, *, attempts: int) -> None:
    envelope = pending.envelope
    ParkedEvent.objects.update_or_create(
        projection=pending.projection,
        event_id=envelope["event_id"],
        defaults={
            "event_type": envelope["event_type"],
            "aggregate_type": envelope["aggregate_type"],
            "aggregate_id": envelope["aggregate_id"],
            "aggregate_version": envelope["aggregate_version"],
            "envelope": dict(envelope),
            "reason": pending.reason,
            "error": pending.error or "waited for an earlier version of its aggregate that did not arrive",
            "attempts": attempts,
        },
    )
    log.error(
        "projection.event_parked",
        projection=pending.projection,
        event_id=envelope["event_id"],
        reason=pending.reason,
        attempts=attempts,
    )
    if pending.reason == ParkedEvent.Reason.GAP:
        # The gap may have filled after our last attempt but before the park committed, when the predecessor
        # found nothing to unpark: one more attempt, now that the parked row is visible, closes that window.
        projection = BY_NAME[pending.projection]
        outcome, _ = apply_once(projection, envelope)
        if outcome in (Outcome.APPLIED, Outcome.DUPLICATE):
            ParkedEvent.objects.filter(projection=projection.name, event_id=envelope["event_id"]).delete()
            if outcome is Outcome.APPLIED:
                unpark_successors(projection, envelope)


def unpark_successors(projection: Projection, envelope: Envelope) -> int:
    """Apply parked events that waited on this one (and their own successors); forget stale parked rows."""
    applied = 0
    while True:
        version = envelope["aggregate_version"]
        parked = list(
            ParkedEvent.objects.filter(
                projection=projection.name,
                aggregate_type=envelope["aggregate_type"],
                aggregate_id=envelope["aggregate_id"],
                aggregate_version__lte=version + 1,
            )
        )
        if not parked:
            return applied
        ParkedEvent.objects.filter(pk__in=[p.pk for p in parked if p.aggregate_version <= version]).delete()
        successor = next((p for p in parked if p.aggregate_version == version + 1), None)
        if successor is None:
            return applied
        outcome, error = apply_once(projection, successor.envelope)
        if outcome is not Outcome.APPLIED:
            _record_attempt(successor, outcome, error)
            return applied
        successor.delete()
        applied += 1
        envelope = successor.envelope


def _record_attempt(parked: ParkedEvent, outcome: Outcome, error: str) -> None:
    # An update by filter, not save(): another worker may have applied and deleted this row meanwhile, and
    # save(update_fields=...) would then raise and drop the rest of the batch (found by the chaos run).
    changes: dict[str, object] = {"attempts": F("attempts") + 1, "last_attempt_at": timezone.now()}
    if outcome is Outcome.FAILED:
        changes.update(reason=ParkedEvent.Reason.FAILED, error=error)
    ParkedEvent.objects.filter(pk=parked.pk).update(**changes)


@dataclass
class RetryReport:
    applied: int = 0
    still_parked: int = 0


def retry_parked(parked: Iterable[ParkedEvent]) -> RetryReport:
    """Apply parked events again, oldest version of each aggregate first; the ones that apply are removed."""
    report = RetryReport()
    ordered = sorted(parked, key=lambda p: (p.projection, p.aggregate_type, p.aggregate_id, p.aggregate_version))
    for item in ordered:
        if not ParkedEvent.objects.filter(pk=item.pk).exists():
            continue  # applied meanwhile as the successor of an earlier one
        projection = BY_NAME[item.projection]
        outcome, error = apply_once(projection, item.envelope)
        if outcome is Outcome.APPLIED:
            item.delete()
            report.applied += 1 + unpark_successors(projection, item.envelope)
        elif outcome is Outcome.DUPLICATE:
            item.delete()
        else:
            _record_attempt(item, outcome, error)
            report.still_parked += 1
    return report
