"""Rebuild read models from the event log, and verify the live ones against it.

Both fold the log through the projection's own handlers, in memory (queries_app.projections.rows.MemoryRows),
reading it in (aggregate type in `follows` order, aggregate id, version) order with chunked server-side reads.

Replay on PostgreSQL builds beside the live model, which keeps serving and keeps being projected:
  1. create `<table>_shadow` (LIKE <table> INCLUDING ALL) for each of the projection's tables;
  2. fold the log as of one snapshot into the shadow tables, with positions under `<name>:replay`;
  3. catch up: apply, through the engine, the events committed since that snapshot (no lock yet);
  4. in one transaction: take the projection's advisory lock exclusively (live appliers finish, new ones
     wait), catch up again with what arrived meanwhile, replace the projection's positions with the replay's,
     top up its inbox, lock the live tables, rename live -> old and shadow -> live, drop old, restore the
     index names, swap the Redis keys (best sellers), commit. Appliers then resume on the new tables, and
     every event they hold is already applied there or newer than anything in it.
Readers see the old model until the commit and the new one after: never a half-built one.
On SQLite the rebuild happens in place inside one transaction (writers are serialized there anyway).

Verify folds only the events the live model has applied (version <= its position, read in the same
REPEATABLE READ snapshot as the live tables), so lag is never reported as drift.
"""

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import connection, models, transaction
from django.db.models import Exists, OuterRef, Sum
from django.db.models.fields.json import KT
from django.utils import timezone

from outbox_app.models import OutboxEvent
from queries_app.envelopes import Envelope, envelope_from_log
from queries_app.models import AggregatePosition, ParkedEvent, ProcessedEvent, ProjectionCheckpoint
from queries_app.projections.base import ApplyContext, Projection
from queries_app.projections.engine import Outcome, Target, apply_once, hold_projection_lock
from queries_app.projections.rows import DatabaseRows, MemoryRows, Sink, live_table, shadow_table, upsert

Progress = Callable[[int], None]
_LOG_FIELDS = (
    "event_id",
    "event_type",
    "schema_version",
    "aggregate_type",
    "aggregate_id",
    "aggregate_version",
    "created_at",
    "correlation_id",
    "causation_id",
    "payload",
)
# The two ids projections may log are read as text, sparing the decoding of each row's whole metadata.
_METADATA = {"correlation_id": KT("metadata__correlation_id"), "causation_id": KT("metadata__causation_id")}


class ReplayError(RuntimeError):
    """The log cannot be folded: an event's apply raised, or an aggregate's versions are not contiguous."""


@dataclass
class ReplayReport:
    projection: str
    folded: int = 0
    caught_up: int = 0


def _no_progress(count: int) -> None:
    return None


# --- Reading the log -------------------------------------------------------------------------------------------


def _applied_by(position_key: str) -> Exists:
    return Exists(
        AggregatePosition.objects.filter(
            projection=position_key,
            aggregate_type=OuterRef("aggregate_type"),
            aggregate_id=OuterRef("aggregate_id"),
            version__gte=OuterRef("aggregate_version"),
        )
    )


def log_size(projection: Projection) -> int:
    return OutboxEvent.objects.filter(aggregate_type__in=projection.follows).count()


def log_events(projection: Projection, *, applied_by: str | None = None, chunk_size: int = 2000) -> Iterator[Envelope]:
    """The log of the followed aggregate types, in replay order; only what `applied_by` applied, if given."""
    for aggregate_type in projection.follows:
        events = OutboxEvent.objects.filter(aggregate_type=aggregate_type)
        if applied_by is not None:
            events = events.filter(_applied_by(applied_by))
        rows = events.order_by("aggregate_id", "aggregate_version").annotate(**_METADATA).values_list(*_LOG_FIELDS)
        for row in rows.iterator(chunk_size=chunk_size):
            yield envelope_from_log(**dict(zip(_LOG_FIELDS, row, strict=True)))


class Fold:
    """Feeds log events, one aggregate after another, through a projection's handlers."""

    def __init__(
        self, projection: Projection, rows: MemoryRows, on_position: Callable[[str, str, int], None] | None = None
    ) -> None:
        self.projection = projection
        self.rows = rows
        self.ctx = ApplyContext(rows=rows, in_memory=True)
        self.on_position = on_position
        self._aggregate: tuple[str, str] | None = None
        self._version = 0
        self.count = 0

    def feed(self, envelope: Envelope) -> None:
        aggregate = (envelope["aggregate_type"], envelope["aggregate_id"])
        if aggregate != self._aggregate:
            self._close_aggregate()
            self._aggregate, self._version = aggregate, 0
        if envelope["aggregate_version"] != self._version + 1:
            raise ReplayError(
                f"{aggregate[0]}/{aggregate[1]}: version {envelope['aggregate_version']} follows {self._version} "
                "in the event log (was it pruned?); the read model cannot be rebuilt from it"
            )
        try:
            self.projection.apply(self.ctx, envelope)
        except Exception as error:
            raise ReplayError(
                f"{self.projection.name}: {envelope['event_type']} {envelope['event_id']} failed: {error!r}"
            ) from error
        self.rows.trim()
        self._version = envelope["aggregate_version"]
        self.count += 1

    def finish(self) -> None:
        self._close_aggregate()
        self.rows.flush()

    def _close_aggregate(self) -> None:
        if self._aggregate is not None and self.on_position is not None:
            self.on_position(self._aggregate[0], self._aggregate[1], self._version)


class PositionWriter:
    def __init__(self, position_key: str, *, batch: int = 5000) -> None:
        self.position_key = position_key
        self.batch = batch
        self._buffer: list[AggregatePosition] = []

    def add(self, aggregate_type: str, aggregate_id: str, version: int) -> None:
        self._buffer.append(
            AggregatePosition(
                projection=self.position_key, aggregate_type=aggregate_type, aggregate_id=aggregate_id, version=version
            )
        )
        if len(self._buffer) >= self.batch:
            self.flush()

    def flush(self) -> None:
        AggregatePosition.objects.bulk_create(self._buffer, batch_size=1000)
        self._buffer = []


@contextmanager
def _one_snapshot() -> Iterator[None]:
    """A transaction that reads the whole log (and the live tables) as of one moment, on PostgreSQL."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


def _writer(table: Callable[[type[models.Model]], str]) -> Sink:
    def write(model: type[models.Model], rows: list[models.Model]) -> None:
        upsert(model, rows, table(model))

    return write


# --- Replay ----------------------------------------------------------------------------------------------------


def replay(projection: Projection, *, progress: Progress = _no_progress, cache_rows: int = 100_000) -> ReplayReport:
    if connection.vendor == "postgresql":
        return _replay_beside(projection, progress, cache_rows)
    return _replay_in_place(projection, progress, cache_rows)


def _fold_into(
    projection: Projection,
    table: Callable[[type[models.Model]], str],
    position_key: str,
    progress: Progress,
    cache_rows: int,
) -> Fold:
    positions = PositionWriter(position_key)
    rows = MemoryRows(
        sink=_writer(table), fallback=DatabaseRows(table, lock=False, remember=False), capacity=cache_rows
    )
    fold = Fold(projection, rows, positions.add)
    for envelope in log_events(projection):
        fold.feed(envelope)
        progress(1)
    fold.finish()
    positions.flush()
    projection.write_extra_fold(fold.ctx)
    return fold


def _replay_beside(projection: Projection, progress: Progress, cache_rows: int) -> ReplayReport:
    report = ReplayReport(projection.name)
    replay_key = f"{projection.name}:replay"
    with transaction.atomic():
        _drop_shadow_tables(projection)
        _create_shadow_tables(projection)
        AggregatePosition.objects.filter(projection=replay_key).delete()
    projection.drop_extra_shadow()
    try:
        with _one_snapshot():
            report.folded = _fold_into(projection, shadow_table, replay_key, progress, cache_rows).count
        # The replay's positions were just bulk-loaded: without fresh statistics the planner takes the
        # catch-up's anti-join against them for a tiny table and runs it in quadratic time.
        _analyze(AggregatePosition)
        report.caught_up = _catch_up(projection, replay_key, progress)
        with transaction.atomic():
            hold_projection_lock(projection.name, exclusive=True)
            report.caught_up += _catch_up(projection, replay_key, progress)
            _adopt_positions(projection, replay_key)
            _swap_tables(projection)
            projection.swap_extra()
            transaction.on_commit(projection.invalidate_caches)
    except BaseException:
        with transaction.atomic():
            _drop_shadow_tables(projection)
            AggregatePosition.objects.filter(projection=replay_key).delete()
        projection.drop_extra_shadow()
        raise
    return report


def _replay_in_place(projection: Projection, progress: Progress, cache_rows: int) -> ReplayReport:
    report = ReplayReport(projection.name)
    projection.drop_extra_shadow()
    with transaction.atomic():
        for model in projection.models:
            model._default_manager.all().delete()
        AggregatePosition.objects.filter(projection=projection.name).delete()
        report.folded = _fold_into(projection, live_table, projection.name, progress, cache_rows).count
        _adopt_positions(projection, projection.name)
        projection.swap_extra()
        transaction.on_commit(projection.invalidate_caches)
    return report


def _analyze(model: type[models.Model]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {connection.ops.quote_name(live_table(model))}")


def _catch_up(projection: Projection, replay_key: str, progress: Progress) -> int:
    """Apply to the shadow every logged event it lacks (committed after the fold's snapshot)."""
    missing = (
        OutboxEvent.objects.filter(aggregate_type__in=projection.follows)
        .exclude(_applied_by(replay_key))
        .order_by("aggregate_type", "aggregate_id", "aggregate_version")
        .annotate(**_METADATA)
        .values_list(*_LOG_FIELDS)
    )
    target = Target(replay_key, "_shadow")
    count = 0
    for row in missing.iterator(chunk_size=2000):
        envelope = envelope_from_log(**dict(zip(_LOG_FIELDS, row, strict=True)))
        outcome, error = apply_once(projection, envelope, target)
        if outcome is Outcome.FAILED:
            raise ReplayError(f"{projection.name}: {envelope['event_type']} {envelope['event_id']} failed:\n{error}")
        if outcome is Outcome.WAITING:
            raise ReplayError(f"{envelope['aggregate_type']}/{envelope['aggregate_id']}: gap in the event log")
        count += 1
        progress(1)
    return count


def _adopt_positions(projection: Projection, replay_key: str) -> None:
    """Make the rebuilt positions the projection's, and bring its inbox, checkpoint and parked events in line."""
    name = projection.name
    if replay_key != name:
        AggregatePosition.objects.filter(projection=name).delete()
        AggregatePosition.objects.filter(projection=replay_key).update(projection=name)
    _top_up_inbox(projection)
    applied = AggregatePosition.objects.filter(projection=name).aggregate(total=Sum("version"))["total"] or 0
    ProjectionCheckpoint.objects.update_or_create(
        projection=name, defaults={"events_applied": applied, "rebuilt_at": timezone.now()}
    )
    ParkedEvent.objects.filter(projection=name).filter(_applied_by(name)).delete()


def _top_up_inbox(projection: Projection) -> None:
    """Every logged event the rebuilt positions cover is in the inbox (the live appliers wrote most already)."""
    quote = connection.ops.quote_name
    inbox = quote(ProcessedEvent._meta.db_table)
    log = quote(OutboxEvent._meta.db_table)
    positions = quote(AggregatePosition._meta.db_table)
    types = ", ".join(["%s"] * len(projection.follows))
    now = ProcessedEvent._meta.get_field("processed_at").get_db_prep_value(timezone.now(), connection)
    # WHERE true: SQLite needs it to tell the JOIN's ON from the upsert's ON CONFLICT.
    sql = (
        f"INSERT INTO {inbox} (projection, event_id, processed_at) "
        f"SELECT %s, e.event_id, %s FROM {log} e JOIN {positions} p ON p.projection = %s "
        "AND p.aggregate_type = e.aggregate_type AND p.aggregate_id = e.aggregate_id "
        f"AND e.aggregate_version <= p.version WHERE e.aggregate_type IN ({types}) "
        "ON CONFLICT (projection, event_id) DO NOTHING"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [projection.name, now, projection.name, *projection.follows])


# --- PostgreSQL shadow tables ----------------------------------------------------------------------------------


def _drop_shadow_tables(projection: Projection) -> None:
    with connection.cursor() as cursor:
        for model in projection.models:
            cursor.execute(f"DROP TABLE IF EXISTS {connection.ops.quote_name(shadow_table(model))}")


def _create_shadow_tables(projection: Projection) -> None:
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for model in projection.models:
            cursor.execute(f"CREATE TABLE {quote(shadow_table(model))} (LIKE {quote(live_table(model))} INCLUDING ALL)")


_INDEX_DEFINITION = re.compile(r"^CREATE (UNIQUE )?INDEX \S+ ON \S+ ")


def _indexes(cursor: Any, table: str) -> list[tuple[str, str, str | None]]:
    """(name, definition without its name and table, backing constraint) of each index of a table."""
    cursor.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid), c.conname FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid LEFT JOIN pg_constraint c ON c.conindid = i.oid "
        "WHERE x.indrelid = %s::regclass ORDER BY i.relname",
        [table],
    )
    return [(name, _INDEX_DEFINITION.sub(r"\1", definition), constraint) for name, definition, constraint in cursor]


def _swap_tables(projection: Projection) -> None:
    quote = connection.ops.quote_name
    tables = [live_table(model) for model in projection.models]
    with connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {', '.join(quote(t) for t in tables)} IN ACCESS EXCLUSIVE MODE")
        for table in tables:
            live_names = _indexes(cursor, table)
            cursor.execute(f"ALTER TABLE {quote(table)} RENAME TO {quote(table + '_old')}")
            cursor.execute(f"ALTER TABLE {quote(table + '_shadow')} RENAME TO {quote(table)}")
            cursor.execute(f"DROP TABLE {quote(table + '_old')}")
            # The shadow's indexes got generated names; give them the live ones, which migrations refer to.
            wanted = {definition: (name, constraint) for name, definition, constraint in live_names}
            for name, definition, constraint in _indexes(cursor, table):
                live_name, live_constraint = wanted.pop(definition, (name, constraint))
                if constraint is not None and live_constraint is not None and constraint != live_constraint:
                    cursor.execute(
                        f"ALTER TABLE {quote(table)} RENAME CONSTRAINT {quote(constraint)} TO {quote(live_constraint)}"
                    )
                elif constraint is None and name != live_name:
                    cursor.execute(f"ALTER INDEX {quote(name)} RENAME TO {quote(live_name)}")


# --- Verify ----------------------------------------------------------------------------------------------------


class _Comparison:
    """Compares each recomputed row with the live one; remembers which keys it saw."""

    def __init__(self) -> None:
        self.drifts: list[str] = []
        self.seen: dict[type[models.Model], set[Any]] = {}

    def __call__(self, model: type[models.Model], rows: list[models.Model]) -> None:
        seen = self.seen.setdefault(model, set())
        fields = [f for f in model._meta.concrete_fields if not getattr(f, "auto_now", False)]
        table = live_table(model)
        for start in range(0, len(rows), 1000):
            chunk = rows[start : start + 1000]
            live = model._default_manager.in_bulk([row.pk for row in chunk])
            for row in chunk:
                seen.add(row.pk)
                actual = live.get(row.pk)
                if actual is None:
                    self.drifts.append(f"{table} {row.pk}: missing from the live table")
                    continue
                for field in fields:
                    expected_value, actual_value = getattr(row, field.attname), getattr(actual, field.attname)
                    if expected_value != actual_value:
                        self.drifts.append(
                            f"{table} {row.pk}: {field.name} is {actual_value!r}, the log gives {expected_value!r}"
                        )

    def extra_rows(self, projection: Projection) -> None:
        for model in projection.models:
            seen = self.seen.get(model, set())
            for pk in model._default_manager.values_list("pk", flat=True).iterator(chunk_size=5000):
                if pk not in seen:
                    self.drifts.append(f"{live_table(model)} {pk}: in the live table, not in the log")


def verify(projection: Projection, *, progress: Progress = _no_progress, cache_rows: int = 1_000_000) -> list[str]:
    """Every difference between the live read model and the log's events it has applied."""
    # One snapshot for the log, the positions and the live tables, while appliers keep committing.
    with _one_snapshot():
        comparison = _Comparison()
        fold = Fold(projection, MemoryRows(sink=comparison, capacity=cache_rows))
        for envelope in log_events(projection, applied_by=projection.name):
            fold.feed(envelope)
            progress(1)
        fold.finish()
        comparison.extra_rows(projection)
        return comparison.drifts + projection.compare_extra_fold(fold.ctx)
