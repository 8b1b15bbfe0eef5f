"""The one repository of the write side: any registered aggregate, mapped to its table by its fields' names.

An aggregate is a dataclass whose stored fields (all but `pending_events`) have columns of the same name in its
record model; a field held in a JSONField (an order's lines) is written as plain JSON and read back by its type
hint. Reads run at once, with the locks asked for in the same round trip; adds and saves are staged in the
transaction as statements (an INSERT, a version-checked UPDATE of the changed columns) that its owner sends
with its own last statement.
"""

import dataclasses
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.db import models

import sqlkit
from commands_app.domain.aggregate import Aggregate
from commands_app.ports import Lock
from commands_app.serialization import from_json_value, to_json_value

if TYPE_CHECKING:
    from commands_app.unit_of_work import SqlUnitOfWork

A = TypeVar("A", bound=Aggregate)


class ConcurrencyError(Exception):
    """The row changed under us although its aggregate lock was held: a bug, never a business error."""


@dataclass(frozen=True)
class AggregateRegistration(Generic[A]):
    """An aggregate as the write side stores and answers it: its record (the Django model of its table) and the
    error codes its commands answer, with their HTTP statuses. `<TYPE>_NOT_FOUND` is 404 without saying so; a
    code listed nowhere answers 422 (a business rule refused the command)."""

    aggregate: type[A]
    record: type[models.Model]
    error_status: Mapping[str, int] = field(default_factory=dict)

    @cached_property
    def columns(self) -> tuple[str, ...]:
        """The stored fields, which are the record's fields of the same names."""
        names = tuple(f.name for f in dataclasses.fields(self.aggregate) if f.metadata.get("stored", True))
        record_fields = {f.name for f in self.record._meta.concrete_fields}
        missing = [name for name in names if name not in record_fields]
        if missing:
            raise ImproperlyConfigured(f"{self.record.__name__} has no column for {self.aggregate.__name__}.{missing}")
        return names

    @cached_property
    def json_columns(self) -> dict[str, Any]:
        """Stored fields held in a JSONField, with the type hint their JSON is read back as."""
        hints = typing.get_type_hints(self.aggregate)
        return {
            name: hints[name]
            for name in self.columns
            if isinstance(self.record._meta.get_field(name), models.JSONField)
        }

    def row(self, aggregate: A) -> dict[str, Any]:
        """The aggregate's stored values by column."""
        values = {name: getattr(aggregate, name) for name in self.columns}
        for name in self.json_columns:
            values[name] = to_json_value(values[name])
        return values

    def from_row(self, values: Sequence[Any]) -> A:
        named = dict(zip(self.columns, values, strict=True))
        for name, hint in self.json_columns.items():
            named[name] = from_json_value(hint, named[name])
        return self.aggregate(**named)


class Aggregates:
    """The registered aggregates: the unit of work's repositories and the result mapper's error statuses."""

    # Codes the core itself answers, whatever the aggregate
    CORE_ERROR_STATUS: Mapping[str, int] = {"VERSION_CONFLICT": 409}

    def __init__(self, *registrations: AggregateRegistration[Any]) -> None:
        self._by_type: dict[type[Aggregate], AggregateRegistration[Any]] = {}
        for registration in registrations:
            if registration.aggregate in self._by_type:
                raise ImproperlyConfigured(f"{registration.aggregate.__name__} is registered twice")
            self._by_type[registration.aggregate] = registration

    def __iter__(self) -> typing.Iterator[AggregateRegistration[Any]]:
        return iter(self._by_type.values())

    def registration(self, aggregate_type: type[A]) -> AggregateRegistration[A]:
        try:
            return self._by_type[aggregate_type]
        except KeyError:
            raise ImproperlyConfigured(f"{aggregate_type.__name__} is not a registered aggregate") from None

    def error_status(self) -> dict[str, int]:
        statuses = dict(self.CORE_ERROR_STATUS)
        for registration in self:
            own = {registration.aggregate.not_found_code(): 404, **registration.error_status}
            for code, status in own.items():
                if statuses.setdefault(code, status) != status:
                    raise ImproperlyConfigured(f"{code} answers {statuses[code]} elsewhere, not {status}")
        return statuses


class SqlRepository(Generic[A]):
    def __init__(self, registration: AggregateRegistration[A], unit: "SqlUnitOfWork") -> None:
        self.registration = registration
        self._unit = unit
        self._record = registration.record
        self._key = registration.aggregate.key_field

    # --- reads ---------------------------------------------------------------------------------------------
    def get(self, key: Any, *, after_locks: Sequence[Lock] = ()) -> A | None:
        (statement,) = sqlkit.select(self._record, self.registration.columns, where={self._key: key})
        rows = self._unit.fetch(statement, after_locks)
        return self._loaded(rows[0]) if rows else None

    def get_many(self, keys: Iterable[Any], *, after_locks: Sequence[Lock] = ()) -> dict[Any, A]:
        statements = sqlkit.select(
            self._record, self.registration.columns, where_in=(self._key, list(keys)), order_by=[self._key]
        )
        if not statements:
            self._unit.lock(*after_locks)
            return {}
        found: dict[Any, A] = {}
        for index, statement in enumerate(statements):
            for row in self._unit.fetch(statement, after_locks if index == 0 else ()):
                aggregate = self._loaded(row)
                found[aggregate.key] = aggregate
        return found

    def exists(self, key: Any, *, after_locks: Sequence[Lock] = ()) -> bool:
        return self.exists_where(after_locks=after_locks, **{self._key: key})

    def exists_where(self, *, after_locks: Sequence[Lock] = (), **fields: Any) -> bool:
        return bool(self._unit.fetch(sqlkit.exists(self._record, **fields), after_locks))

    def _loaded(self, row: Sequence[Any]) -> A:
        (values,) = sqlkit.decode(self._record, self.registration.columns, [row])
        aggregate = self.registration.from_row(values)
        self._unit.track(aggregate, loaded=self.registration.row(aggregate))
        return aggregate

    # --- writes (staged) -----------------------------------------------------------------------------------
    def add(self, aggregate: A) -> None:
        self._unit.track(aggregate, loaded=None)
        self._unit.stage_write(aggregate, sqlkit.insert(self._record, [self.registration.row(aggregate)]))

    def save(self, aggregate: A) -> None:
        """A version-checked UPDATE of the columns that changed since the read: another row count than one means
        the row moved under its lock, and raises ConcurrencyError when the owner sends it."""
        loaded = self._unit.loaded_values(aggregate)
        if loaded is None:
            raise RuntimeError(f"{aggregate.aggregate_type} {aggregate.aggregate_id} was not read by this unit of work")
        row = self.registration.row(aggregate)
        changed = {name: value for name, value in row.items() if loaded[name] != value}
        if not changed:
            self._unit.stage_write(aggregate, [])
            return
        statement = sqlkit.update(
            self._record,
            changed,
            where={self._key: aggregate.key, "version": loaded["version"]},
            expect_rows=1,
            mismatch=lambda: ConcurrencyError(
                f"{aggregate.aggregate_type} {aggregate.aggregate_id} moved under its lock"
            ),
        )
        self._unit.stage_write(aggregate, [statement])
