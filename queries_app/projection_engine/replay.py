"""Rebuild read models from the event log, and verify the live ones against it.

Both fold the log through the projection's own handlers, in memory (queries_app.projection_engine.rows.MemoryRows),
reading the log (the outbox and its archive, through outbox_app.log.read_by_aggregate) in (aggregate type in
`follows` order, aggregate id, version) order with chunked server-side reads.
Projections whose `follows` fit one order (customers, orders and best sellers all read Customer then Order)
are rebuilt together from one pass over the log: each event is read and decoded once and fed to every one
of them that follows its aggregate type.

Replay on PostgreSQL builds beside the live model, which keeps serving and keeps being projected:
  1. create `<table>_shadow` (LIKE <table> INCLUDING ALL) for each of the projection's tables;
  2. fold the log as of one snapshot into the shadow tables (COPY for rows new to them), with positions
     under `<name>:replay`;
  3. catch up: apply, through the engine, the events committed since that snapshot (no lock yet);
  4. in one transaction: take the projection's advisory lock exclusively (live appliers finish, new ones
     wait), catch up again with what arrived meanwhile, replace the projection's positions with the replay's,
     lock the live tables, rename live -> old and shadow -> live, drop old, restore the
     index names, commit. Appliers then resume on the new tables, and
     every event they hold is already applied there or newer than anything in it.
Steps 3 and 4 run for each projection of a pass in turn, so each is swapped under its own lock.
Readers see the old model until the commit and the new one after: never a half-built one.
On SQLite the rebuild happens in place inside one transaction (writers are serialized there anyway).

Verify folds only the events the live model has applied (version <= its position, read in the same
REPEATABLE READ snapshot as the live tables), so lag is never reported as drift.
"""

import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from django.db import connection, models, transaction
from django.db.models import Sum
from django.utils import timezone

import sqlkit
from outbox_app import log
from queries_app import lag
from queries_app.envelopes import Envelope
from queries_app.models import AggregatePosition, ParkedEvent, ProjectionCheckpoint
from queries_app.projection_engine.apply import Outcome, Target, apply_once, hold_projection_lock
from queries_app.projection_engine.projection import ApplyContext, Projection
from queries_app.projection_engine.rows import (
    DatabaseRows,
    FoldRows,
    FreshTableWriter,
    MemoryRows,
    live_table,
    shadow_table,
)

Progress = Callable[[int], None]
# Rows fetched per round trip of the server-side cursor, and events folded per progress report.
_CHUNK = 10_000
_PROGRESS_EVERY = 1000
_WORK_MEM = "256MB"


class ReplayError(RuntimeError):
    """The log cannot be folded: an event's apply raised, or an aggregate's versions are not contiguous.

    `projections` names those a replay left untouched (set by replay_together)."""

    projections: tuple[str, ...] = ()


@dataclass
class ReplayReport:
    projection: str
    folded: int = 0
    caught_up: int = 0
    # the pass's fold (shared by the projections of one pass), then this projection's catch-up and swap
    fold_seconds: float = 0.0
    swap_seconds: float = 0.0


def _no_progress(count: int) -> None:
    return None


# --- Reading the log -------------------------------------------------------------------------------------------


def log_size(aggregate_types: Sequence[str]) -> int:
    return log.log_size(aggregate_types)


def log_events(
    aggregate_types: Sequence[str], *, applied_by: str | None = None, chunk_size: int = _CHUNK
) -> Iterator[Envelope]:
    """The log (outbox and archive) of these aggregate types, in replay order; only what `applied_by` applied."""
    only = None if applied_by is None else lag.applied_by(applied_by)
    return cast(Iterator[Envelope], log.read_by_aggregate(aggregate_types, only=only, chunk_size=chunk_size))


class Fold:
    """Feeds log events, one aggregate after another, through a projection's handlers."""

    def __init__(
        self, projection: Projection, rows: MemoryRows, on_position: Callable[[str, str, int], None] | None = None
    ) -> None:
        self.projection = projection
        self.rows = rows
        self.ctx = ApplyContext(rows=rows)
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
    """Writes the positions a fold reaches: COPY on PostgreSQL (its table has none under this key yet)."""

    _COLUMNS = ("projection", "aggregate_type", "aggregate_id", "version")

    def __init__(self, position_key: str, *, batch: int = 50_000) -> None:
        self.position_key = position_key
        self.batch = batch
        self._buffer: list[tuple[str, str, str, int]] = []

    def add(self, aggregate_type: str, aggregate_id: str, version: int) -> None:
        self._buffer.append((self.position_key, aggregate_type, aggregate_id, version))
        if len(self._buffer) >= self.batch:
            self.flush()

    def flush(self) -> None:
        dialect = sqlkit.dialect()
        if dialect.copies_rows:
            dialect.copy(live_table(AggregatePosition), self._COLUMNS, self._buffer)
        else:
            AggregatePosition.objects.bulk_create(
                [AggregatePosition(**dict(zip(self._COLUMNS, row, strict=True))) for row in self._buffer],
                batch_size=1000,
            )
        self._buffer = []


@contextmanager
def _one_snapshot() -> Iterator[None]:
    """A transaction that reads the whole log (and the live tables) as of one moment, on PostgreSQL."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        snapshot = sqlkit.dialect().repeatable_read()
        if outermost and snapshot is not None:
            sqlkit.send([snapshot])
        yield


# --- Replay ----------------------------------------------------------------------------------------------------


def replay_order(projections: Sequence[Projection]) -> tuple[str, ...] | None:
    """The aggregate types one pass over the log reads for all these projections, or None if none fits.

    A pass fits when each projection's `follows` is a subsequence of it: every projection then sees its
    own types in its own order, as if it were replayed alone."""
    order: tuple[str, ...] = ()
    for projection in projections:
        if _is_subsequence(order, projection.follows):
            order = projection.follows
        elif not _is_subsequence(projection.follows, order):
            return None
    return order


def _is_subsequence(part: Sequence[str], whole: Sequence[str]) -> bool:
    remaining = iter(whole)
    return all(item in remaining for item in part)


def passes(projections: Sequence[Projection]) -> list[list[Projection]]:
    """The projections grouped into as few passes over the log as their `follows` allow, in the given order."""
    groups: list[list[Projection]] = []
    for projection in projections:
        for group in groups:
            if replay_order([*group, projection]) is not None:
                group.append(projection)
                break
        else:
            groups.append([projection])
    return groups


def replay(projection: Projection, *, progress: Progress = _no_progress, cache_rows: int = 100_000) -> ReplayReport:
    return replay_together([projection], progress=progress, cache_rows=cache_rows)[0]


def replay_together(
    projections: Sequence[Projection], *, progress: Progress = _no_progress, cache_rows: int = 100_000
) -> list[ReplayReport]:
    """Rebuild these projections from one pass over the log (see passes()); `cache_rows` per projection."""
    order = replay_order(projections)
    if order is None:
        raise ValueError(f"{[p.name for p in projections]} follow aggregate types in orders no single pass fits")
    rebuild = _replay_beside if sqlkit.dialect().rebuilds_beside_live_tables else _replay_in_place
    return rebuild(list(projections), order, progress, cache_rows)


def _fold_into(
    projections: list[Projection],
    order: tuple[str, ...],
    table: Callable[[type[models.Model]], str],
    position_key: Callable[[Projection], str],
    progress: Progress,
    cache_rows: int,
) -> list[Fold]:
    folds, positions = [], []
    by_type: dict[str, list[Fold]] = {aggregate_type: [] for aggregate_type in order}
    for projection in projections:
        writer = PositionWriter(position_key(projection))
        rows = FoldRows(
            sink=FreshTableWriter(table),
            fallback=DatabaseRows(table, lock=False, remember=False),
            capacity=cache_rows,
        )
        fold = Fold(projection, rows, writer.add)
        folds.append(fold)
        positions.append(writer)
        for aggregate_type in projection.follows:
            by_type[aggregate_type].append(fold)
    unreported = 0
    for envelope in log_events(order):
        for fold in by_type[envelope["aggregate_type"]]:
            fold.feed(envelope)
        unreported += 1
        if unreported == _PROGRESS_EVERY:
            progress(unreported)
            unreported = 0
    progress(unreported)
    for fold, writer in zip(folds, positions, strict=True):
        fold.finish()
        writer.flush()
    return folds


def _replay_key(projection: Projection) -> str:
    return f"{projection.name}:replay"


def _replay_beside(
    projections: list[Projection], order: tuple[str, ...], progress: Progress, cache_rows: int
) -> list[ReplayReport]:
    reports = [ReplayReport(projection.name) for projection in projections]
    untouched = list(projections)
    with transaction.atomic():
        for projection in projections:
            _drop_shadow_tables(projection)
            _create_shadow_tables(projection)
            AggregatePosition.objects.filter(projection=_replay_key(projection)).delete()
    try:
        _set_work_mem(_WORK_MEM)
        started = time.monotonic()
        with _one_snapshot():
            folds = _fold_into(projections, order, shadow_table, _replay_key, progress, cache_rows)
        for report, fold in zip(reports, folds, strict=True):
            report.folded = fold.count
            report.fold_seconds = time.monotonic() - started
        # The replay's positions were just bulk-loaded: without fresh statistics the planner takes the
        # catch-up's anti-join against them for a tiny table and runs it in quadratic time.
        _analyze(AggregatePosition)
        for projection, report in zip(projections, reports, strict=True):
            started = time.monotonic()
            replay_key = _replay_key(projection)
            report.caught_up = _catch_up(projection, replay_key, progress)
            with transaction.atomic():
                hold_projection_lock(projection.name, exclusive=True)
                report.caught_up += _catch_up(projection, replay_key, progress)
                _adopt_positions(projection, replay_key)
                _swap_tables(projection)
                transaction.on_commit(projection.invalidate_caches)
            untouched.remove(projection)
            report.swap_seconds = time.monotonic() - started
    except BaseException as error:
        with transaction.atomic():
            for projection in untouched:
                _drop_shadow_tables(projection)
                AggregatePosition.objects.filter(projection=_replay_key(projection)).delete()
        if isinstance(error, ReplayError):
            error.projections = tuple(projection.name for projection in untouched)
        raise
    finally:
        _set_work_mem(None)
    return reports


def _set_work_mem(size: str | None) -> None:
    """Session work_mem: the catch-up's anti-join joins the whole log with the positions,
    which with the default 4MB spill to disk or turn into a merge join over random index reads, several times
    slower (docs/benchmarks.md, "Measured choices in the code")."""
    sqlkit.send([sqlkit.Statement("RESET work_mem") if size is None else sqlkit.Statement("SET work_mem = %s", [size])])


def _replay_in_place(
    projections: list[Projection], order: tuple[str, ...], progress: Progress, cache_rows: int
) -> list[ReplayReport]:
    reports = [ReplayReport(projection.name) for projection in projections]
    try:
        with transaction.atomic():
            for projection in projections:
                for model in projection.models:
                    model._default_manager.all().delete()
                AggregatePosition.objects.filter(projection=projection.name).delete()
            folds = _fold_into(projections, order, live_table, _live_key, progress, cache_rows)
            for projection, report, fold in zip(projections, reports, folds, strict=True):
                report.folded = fold.count
                _adopt_positions(projection, projection.name)
                transaction.on_commit(projection.invalidate_caches)
    except ReplayError as error:
        error.projections = tuple(projection.name for projection in projections)
        raise
    return reports


def _live_key(projection: Projection) -> str:
    return projection.name


def _analyze(model: type[models.Model]) -> None:
    sqlkit.send([sqlkit.Statement(f"ANALYZE {connection.ops.quote_name(live_table(model))}")])


def _catch_up(projection: Projection, replay_key: str, progress: Progress) -> int:
    """Apply to the shadow every logged event it lacks (committed after the fold's snapshot)."""
    missing = log.read_by_aggregate(projection.follows, leaving_out=lag.applied_by(replay_key), stream=False)
    target = Target(replay_key, "_shadow")
    count = 0
    # What arrived during the fold (or the first catch-up) is small next to the log the anti-join reads.
    for envelope in cast(Iterator[Envelope], missing):
        outcome, error = apply_once(projection, envelope, target)
        if outcome is Outcome.FAILED:
            raise ReplayError(f"{projection.name}: {envelope['event_type']} {envelope['event_id']} failed:\n{error}")
        if outcome is Outcome.WAITING:
            raise ReplayError(
                f"{projection.name}: {envelope['aggregate_type']}/{envelope['aggregate_id']}: gap in the event log"
            )
        count += 1
        progress(1)
    return count


def _adopt_positions(projection: Projection, replay_key: str) -> None:
    """Make the rebuilt positions the projection's, and bring its checkpoint and parked events in line.

    The inbox is left as it is: the positions decide what is a duplicate before the inbox is asked, and the inbox
    only keeps a window of recent entries anyway (docs/read-models.md, "The inbox's window")."""
    name = projection.name
    if replay_key != name:
        AggregatePosition.objects.filter(projection=name).delete()
        AggregatePosition.objects.filter(projection=replay_key).update(projection=name)
    applied = AggregatePosition.objects.filter(projection=name).aggregate(total=Sum("version"))["total"] or 0
    ProjectionCheckpoint.objects.update_or_create(
        projection=name, defaults={"events_applied": applied, "rebuilt_at": timezone.now()}
    )
    ParkedEvent.objects.filter(projection=name).filter(lag.applied_by(name)).delete()


# --- PostgreSQL shadow tables ----------------------------------------------------------------------------------


def _drop_shadow_tables(projection: Projection) -> None:
    quote = connection.ops.quote_name
    sqlkit.send([sqlkit.Statement(f"DROP TABLE IF EXISTS {quote(shadow_table(model))}") for model in projection.models])


def _create_shadow_tables(projection: Projection) -> None:
    quote = connection.ops.quote_name
    sqlkit.send(
        [
            sqlkit.Statement(
                f"CREATE TABLE {quote(shadow_table(model))} (LIKE {quote(live_table(model))} INCLUDING ALL)"
            )
            for model in projection.models
        ]
    )


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
        fold = Fold(projection, FoldRows(sink=comparison, capacity=cache_rows))
        for envelope in log_events(projection.follows, applied_by=projection.name):
            fold.feed(envelope)
            progress(1)
        fold.finish()
        comparison.extra_rows(projection)
        return comparison.drifts
