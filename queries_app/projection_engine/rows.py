"""Where projection handlers read and write rows: database tables, or memory while folding the event log.

Handlers get rows by primary key (or by one column), mutate them, and the store writes every row it handed
out with INSERT ... ON CONFLICT DO UPDATE. The SQL names the table explicitly, so the same handler writes a
live table or its `_shadow` twin during a replay.

A batch of events first names the rows its handlers will ask for (`Need`, from Projection.needs) so that
DatabaseRows.prefetch loads and locks them in a few statements, in one stable order (table by table, in key
order), before any handler runs: two workers applying overlapping batches queue on the first row they share
instead of deadlocking. A row no `Need` named is still read (and locked) on demand.
"""

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from operator import attrgetter
from typing import Any, Protocol, TypeVar
from uuid import UUID

from django.db import connections, models
from django.utils import timezone

import sqlkit

M = TypeVar("M", bound=models.Model)
TableName = Callable[[type[models.Model]], str]
Sink = Callable[[type[models.Model], list[models.Model]], None]


class RowCreatedMeanwhile(RuntimeError):
    """A row prefetch() found missing was created by another transaction before this one inserted it: what the
    handlers made of it is stale. The caller rolls back and applies again; the row then exists, and is locked."""


class ReplayOrderError(RuntimeError):
    """An in-memory fold needed a row it had already handed on: the replay order assumption was broken."""


class Rows(Protocol):
    def get(self, model: type[M], pk: Any) -> M | None: ...

    def get_or_create(self, model: type[M], pk: Any) -> M:
        """The row, or a new one with the model's defaults (a placeholder until its own events arrive)."""
        ...

    def filter(self, model: type[M], field: str, value: Any) -> list[M]: ...

    def put(self, row: M) -> M:
        """A new row (the aggregate's first event creates it, so no other applier can hold it)."""
        ...


@dataclass(frozen=True)
class Need:
    """A row a handler will ask for by primary key (`create`: with get_or_create), or the rows whose `field` is
    `value` (filter)."""

    model: type[models.Model]
    value: Any
    field: str = ""
    create: bool = False


def live_table(model: type[models.Model]) -> str:
    return model._meta.db_table


def shadow_table(model: type[models.Model]) -> str:
    return f"{model._meta.db_table}_shadow"


def _pk_field(model: type[models.Model]) -> "models.Field[Any, Any]":
    pk = model._meta.pk
    assert pk is not None
    return pk


@lru_cache(maxsize=16384)
def _field_value(model: type[models.Model], field: str, value: Any) -> Any:
    """`value` as the Python value of the field (a UUID from its text, say). Cached: a batch names the same keys
    several times (in needs() and in each handler), and parsing them was a good part of its Python time."""
    return model._meta.get_field(field).to_python(value)  # type: ignore[union-attr]


def _pk(model: type[models.Model], value: Any) -> Any:
    return _field_value(model, _pk_field(model).name, value)


def _in_key_order(keys: Iterable[Any]) -> list[Any]:
    """Sorted as the database orders them: UUIDs by their number (UUID.__lt__ is a Python call per comparison)."""
    keys = list(keys)
    if keys and isinstance(keys[0], UUID):
        return sorted(keys, key=_uuid_number)
    return sorted(keys)


_uuid_number = attrgetter("int")


def _names(model: type[models.Model]) -> list[str]:
    return [f.name for f in model._meta.concrete_fields]


def load(
    model: type[M], table: str, column: str, values: Sequence[Any], *, lock: bool, using: str = "default"
) -> list[M]:
    """Rows of `table` (shaped like `model`) whose field `column` is one of `values`, in key order (so that
    transactions locking overlapping sets of rows take them in the same order), locked if `lock`."""
    names = _names(model)
    found: list[tuple[Any, ...]] = []
    for statement in sqlkit.select(
        model, names, where_in=(column, values), order_by=[_pk_field(model).name], lock=lock, table=table, using=using
    ):
        found += sqlkit.send([statement], using=using)[0].rows
    # What the ORM's raw() does, without its per-row bookkeeping: only the fields with converters convert.
    attnames = [f.attname for f in model._meta.concrete_fields]
    return [model.from_db(using, attnames, row) for row in sqlkit.decode(model, names, found, using=using)]


def upsert(
    model: type[models.Model],
    rows: Iterable[models.Model],
    table: str,
    *,
    using: str = "default",
    update: bool = True,
    inserted: list[Any] | None = None,
) -> int:
    """INSERT ... ON CONFLICT (pk) DO UPDATE every column (or DO NOTHING), in key order (so concurrent upserts of
    overlapping rows, placeholders included, queue instead of deadlocking); returns the rows written.

    Values are read off the instances as they are (the handlers set Python values of the fields' types); auto_now
    columns get one timestamp for the whole statement. `inserted`, if given, receives the keys of the rows that
    were new (RETURNING: DO NOTHING only).
    """
    rows = list(rows)
    if not rows:
        return 0
    fields = list(model._meta.concrete_fields)
    pk = _pk_field(model).name
    now = timezone.now()
    stamped = [f.attname for f in fields if getattr(f, "auto_now", False)]
    for row in rows:
        for attname in stamped:
            setattr(row, attname, now)
    values_of = _values_getter(model)
    statements = sqlkit.insert(
        model,
        [values_of(row) for row in rows],
        columns=_names(model),
        table=table,
        on_conflict=sqlkit.OnConflict(
            target=(pk,), update=tuple(f.name for f in fields if not f.primary_key) if update else ()
        ),
        returning=[pk] if inserted is not None else (),
        using=using,
    )
    written = 0
    for outcome in sqlkit.send(statements, using=using):
        written += outcome.rowcount
        if inserted is not None:
            inserted += [_pk(model, key) for (key,) in outcome.rows]
    return written


class FreshTableWriter:
    """A MemoryRows sink for tables that start empty (a replay's shadow tables, a rebuild in place).

    A row it has not written before is new to the table: on PostgreSQL it goes in with COPY. A row written
    before (handed on, read back, handed on again) is upserted over its older copy.
    """

    def __init__(self, table: TableName, *, using: str = "default") -> None:
        self.table = table
        self.using = using
        self._written: dict[type[models.Model], set[Any]] = {}

    def __call__(self, model: type[models.Model], rows: list[models.Model]) -> None:
        written = self._written.setdefault(model, set())
        again = [row for row in rows if row.pk in written]
        new = [row for row in rows if row.pk not in written]
        upsert(model, again, self.table(model), using=self.using)
        dialect = sqlkit.dialect(self.using)
        if dialect.copies_rows and new:
            fields = list(model._meta.concrete_fields)
            values = [_copy_value(field, connections[self.using]) for field in fields]
            dialect.copy(
                self.table(model), [str(f.column) for f in fields], ([value(row) for value in values] for row in new)
            )
        else:
            upsert(model, new, self.table(model), using=self.using)
        written.update(row.pk for row in new)


# Fields whose Python value COPY writes as it is: its text form is what PostgreSQL parses into the column, so
# Django's per-value preparation (most of a replay's write cost) is skipped. JSON and auto_now fields keep it.
_COPIED_AS_IS = {
    "BigIntegerField",
    "BooleanField",
    "CharField",
    "DateTimeField",
    "DecimalField",
    "IntegerField",
    "PositiveBigIntegerField",
    "PositiveIntegerField",
    "SmallIntegerField",
    "TextField",
    "UUIDField",
}


def _copy_value(field: Any, connection: Any) -> Callable[[models.Model], Any]:
    if field.get_internal_type() in _COPIED_AS_IS and not (
        getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
    ):
        return attrgetter(field.attname)
    return lambda row: field.get_db_prep_save(field.pre_save(row, False), connection)


def _placeholder(model: type[M], pk: Any) -> M:
    """model(pk=pk), without the keyword arguments' cost (a batch makes hundreds; docs/benchmarks.md, "Measured
    choices in the code")."""
    return model(*[pk if field.primary_key else field.get_default() for field in model._meta.concrete_fields])


@cache
def _values_getter(model: type[models.Model]) -> Callable[[models.Model], tuple[Any, ...]]:
    getter = attrgetter(*(f.attname for f in model._meta.concrete_fields))
    if len(model._meta.concrete_fields) == 1:
        return lambda row: (getter(row),)
    return getter


class DatabaseRows:
    """Rows of database tables, locked FOR UPDATE as they are read (inside the caller's transaction)."""

    def __init__(
        self, table: TableName = live_table, *, lock: bool = True, remember: bool = True, using: str = "default"
    ) -> None:
        self.table = table
        self.lock = lock
        # A store that remembers writes back every row it handed out on flush(); a read-only one does not.
        self.remember = remember
        self.using = using
        self._rows: dict[type[models.Model], dict[Any, models.Model]] = {}
        # (model, field, value) whose rows prefetch() loaded: filter() answers them from memory
        self._loaded_by: set[tuple[type[models.Model], str, Any]] = set()
        # keys of the rows prefetch() found missing: flush() inserts them (and only if they are still missing)
        self._created: dict[type[models.Model], set[Any]] = {}

    def _held(self, model: type[models.Model]) -> dict[Any, models.Model]:
        return self._rows.setdefault(model, {})

    def prefetch(self, needs: Iterable[Need], lock_order: Sequence[type[models.Model]] = ()) -> None:
        """Load (and lock) the needed rows in bulk: table by table in `lock_order`, each in key order.

        get_or_create rows that do not exist start as placeholders in memory, and flush() inserts them with the
        values the handlers gave them (one write, not a placeholder and then an update): if another transaction
        created one of them meanwhile, flush() raises RowCreatedMeanwhile, for the caller to roll back and apply
        again. The rows of a filter are looked up after the tables before it are locked (or known missing): a
        handler that locks a parent row (an order's customer) before listing its children relies on that to see
        every child, and a parent created meanwhile is RowCreatedMeanwhile.
        """
        rank = {model: index for index, model in enumerate(lock_order)}
        pks: dict[type[models.Model], set[Any]] = {}
        creates: dict[type[models.Model], set[Any]] = {}
        by_field: dict[type[models.Model], dict[str, set[Any]]] = {}
        for need in needs:
            if need.field:
                value = _field_value(need.model, need.field, need.value)
                by_field.setdefault(need.model, {}).setdefault(need.field, set()).add(value)
            else:
                pk = _pk(need.model, need.value)
                pks.setdefault(need.model, set()).add(pk)
                if need.create:
                    creates.setdefault(need.model, set()).add(pk)
        for model in sorted(pks.keys() | by_field.keys(), key=lambda m: (rank.get(m, len(rank)), m._meta.label)):
            table = self.table(model)
            held = self._held(model)
            wanted = set(pks.get(model, ()))
            for field, values in by_field.get(model, {}).items():
                wanted.update(_keys_where(model, table, field, _in_key_order(values), using=self.using))
            self._load_into(held, model, table, wanted)
            missing = {pk: _placeholder(model, pk) for pk in creates.get(model, ()) if pk not in held}
            held.update(missing)
            self._created.setdefault(model, set()).update(missing)
            self._loaded_by.update(
                (model, field, value) for field, values in by_field.get(model, {}).items() for value in values
            )

    def _load_into(self, held: dict[Any, models.Model], model: type[models.Model], table: str, keys: set[Any]) -> None:
        missing = _in_key_order(pk for pk in keys if pk not in held)
        for row in load(model, table, _pk_field(model).name, missing, lock=self.lock, using=self.using):
            held.setdefault(row.pk, row)

    def get(self, model: type[M], pk: Any) -> M | None:
        pk = _pk(model, pk)
        held = self._held(model)
        if pk in held:
            return held[pk]  # type: ignore[return-value]
        found = load(model, self.table(model), _pk_field(model).name, [pk], lock=self.lock, using=self.using)
        if not found:
            return None
        if self.remember:
            held[pk] = found[0]
        return found[0]

    def get_or_create(self, model: type[M], pk: Any) -> M:
        row = self.get(model, pk)
        if row is None:
            # Insert a placeholder, then lock it: concurrent appliers of the same row queue on it instead
            # of each upserting its own copy over the other's.
            upsert(model, [model(pk=_pk(model, pk))], self.table(model), using=self.using, update=False)
            row = self.get(model, pk)
            assert row is not None
        return row

    def filter(self, model: type[M], field: str, value: Any) -> list[M]:
        model_field: Any = model._meta.get_field(field)
        value = _field_value(model, field, value)
        held = [row for row in self._held(model).values() if getattr(row, model_field.attname) == value]
        if (model, field, value) in self._loaded_by:
            return held  # type: ignore[return-value]
        found = load(model, self.table(model), field, [value], lock=self.lock, using=self.using)
        if not self.remember:
            return found
        # Rows this store already holds win (they may carry an earlier event's changes), new ones included.
        rows = [self._held(model).setdefault(row.pk, row) for row in found]
        in_database = {row.pk for row in rows}
        return rows + [row for row in held if row.pk not in in_database]  # type: ignore[return-value]

    def put(self, row: M) -> M:
        self._held(type(row))[row.pk] = row
        return row

    def flush(self) -> None:
        """Write every row handed out: the ones prefetch() found missing with INSERT ... ON CONFLICT DO NOTHING,
        table by table in the order prefetch() took them and in key order (so two transactions inserting rows
        both miss queue instead of deadlocking); RowCreatedMeanwhile if one of them exists by now."""
        for model, held in self._rows.items():
            created = self._created.get(model, set())
            if created:
                inserted: list[Any] = []
                upsert(
                    model,
                    [held[pk] for pk in created],
                    self.table(model),
                    using=self.using,
                    update=False,
                    inserted=inserted,
                )
                if len(inserted) != len(created):
                    raise RowCreatedMeanwhile(
                        f"{len(created) - len(inserted)} {model.__name__} row(s) created by another transaction"
                    )
            rows = [row for pk, row in held.items() if pk not in created]
            if rows:
                upsert(model, rows, self.table(model), using=self.using)
        self._rows.clear()
        self._loaded_by.clear()
        self._created.clear()


def _keys_where(model: type[models.Model], table: str, field: str, values: Sequence[Any], *, using: str) -> list[Any]:
    """Primary keys of the rows of `table` whose `field` is one of `values` (read, not locked)."""
    pk = _pk_field(model)
    statements = sqlkit.select(model, [pk.name], where_in=(field, values), table=table, using=using)
    return [pk.to_python(key) for outcome in sqlkit.send(statements, using=using) for (key,) in outcome.rows]


class MemoryRows:
    """Rows held in memory while a replay or a verification folds the event log.

    Every row handed out counts as written. Past `capacity` rows (checked by trim() between events), the
    least recently used half of the largest table goes to `sink` and is dropped from memory. The sink is
    where rows live from then on: a dropped row that is needed again is read back from `fallback` (the
    shadow table, during a replay), and only a dropped one, so folding into an empty table costs no reads.
    Without a fallback (verification) a dropped row must not be needed again, which the replay order
    guarantees (see Projection.follows); if it is, ReplayOrderError says so.
    """

    def __init__(self, *, sink: Sink, fallback: Rows | None = None, capacity: int = 100_000) -> None:
        self.sink = sink
        self.fallback = fallback
        self.capacity = capacity
        self._tables: dict[type[models.Model], OrderedDict[Any, models.Model]] = {}
        self._dirty: set[tuple[type[models.Model], Any]] = set()
        self._size = 0
        self._dropped: dict[type[models.Model], set[Any]] = {}

    def _table(self, model: type[models.Model]) -> OrderedDict[Any, models.Model]:
        return self._tables.setdefault(model, OrderedDict())

    def _hold(self, model: type[M], row: M) -> M:
        table = self._table(model)
        if row.pk not in table:
            self._size += 1
        table[row.pk] = row
        table.move_to_end(row.pk)
        self._dirty.add((model, row.pk))
        return row

    def get(self, model: type[M], pk: Any) -> M | None:
        pk = _pk(model, pk)
        table = self._table(model)
        if pk in table:
            return self._hold(model, table[pk])  # type: ignore[return-value]
        if pk not in self._dropped.get(model, ()):
            return None
        if self.fallback is None:
            raise ReplayOrderError(f"{model.__name__} {pk} was needed again after it was handed on")
        row = self.fallback.get(model, pk)
        return None if row is None else self._hold(model, row)

    def get_or_create(self, model: type[M], pk: Any) -> M:
        row = self.get(model, pk)
        return row if row is not None else self._hold(model, model(pk=_pk(model, pk)))

    def filter(self, model: type[M], field: str, value: Any) -> list[M]:
        model_field = model._meta.get_field(field)
        attname = model_field.attname  # type: ignore[union-attr]
        value = model_field.to_python(value)  # type: ignore[union-attr]
        matches = [row for row in self._table(model).values() if getattr(row, attname) == value]
        if self._dropped.get(model):
            if self.fallback is None:
                raise ReplayOrderError(f"{model.__name__} rows were looked up by {field} after some were handed on")
            held = {row.pk for row in matches}
            matches += [row for row in self.fallback.filter(model, field, value) if row.pk not in held]
        return [self._hold(model, row) for row in matches]  # type: ignore[misc]

    def put(self, row: M) -> M:
        return self._hold(type(row), row)

    def flush(self) -> None:
        """Hand every written row to the sink."""
        for model, table in self._tables.items():
            rows = [row for pk, row in table.items() if (model, pk) in self._dirty]
            if rows:
                self.sink(model, rows)
        self._dirty.clear()

    def trim(self) -> None:
        """Keep within capacity; called between events, so no handler holds a row being dropped."""
        if self._size > self.capacity:
            self._drop_half()

    def _drop_half(self) -> None:
        model = max(self._tables, key=lambda m: len(self._tables[m]))
        table = self._tables[model]
        dropped = [table.popitem(last=False) for _ in range(len(table) // 2)]
        self._size -= len(dropped)
        self.sink(model, [row for pk, row in dropped if (model, pk) in self._dirty])
        self._dirty.difference_update((model, pk) for pk, _ in dropped)
        self._dropped.setdefault(model, set()).update(pk for pk, _ in dropped)


class FoldRows(MemoryRows):
    """MemoryRows tuned for folding a whole log: the same rows, built and looked up with less overhead.

    A new row is built through Django's positional constructor (the one from_db uses) instead of its keyword
    path, and a lookup by column among no held and no handed-on rows answers at once.
    """

    def __init__(self, *, sink: Sink, fallback: Rows | None = None, capacity: int = 100_000) -> None:
        super().__init__(sink=sink, fallback=fallback, capacity=capacity)
        self._blanks: dict[type[models.Model], list[tuple[bool, Any]]] = {}

    def get_or_create(self, model: type[M], pk: Any) -> M:
        pk = _pk(model, pk)
        row = self.get(model, pk)
        return row if row is not None else self._hold(model, self._new(model, pk))

    def filter(self, model: type[M], field: str, value: Any) -> list[M]:
        if not self._tables.get(model) and not self._dropped.get(model):
            return []
        return super().filter(model, field, value)

    def _new(self, model: type[M], pk: Any) -> M:
        blank = self._blanks.get(model)
        if blank is None:
            blank = self._blanks[model] = [_blank_value(field) for field in model._meta.concrete_fields]
        return model(*[pk if is_pk else (value() if callable(value) else value) for is_pk, value in blank])


def _blank_value(field: Any) -> tuple[bool, Any]:
    """(is the primary key, the default or a callable making it); callables (list, dict) make a fresh one each."""
    if field.primary_key:
        return True, None
    if field.has_default() and callable(field.default):
        return False, field.default
    return False, field.get_default()
