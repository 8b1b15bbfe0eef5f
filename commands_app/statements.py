"""A unit of work's writes as statements, sent together at its commit: one round trip on PostgreSQL.

Each statement is built from its model's metadata (columns, and the fields' own conversion of each value), so
what reaches the table is what the ORM would have written. On PostgreSQL the statements go as one query of
several statements (psycopg's client-side cursor sends it over the simple query protocol); they run in order,
in the caller's transaction, and each reports its own row count. Elsewhere (SQLite) they run one by one.

The owner of the transaction around a unit of work (the idempotency middleware) may open `deferred()`: the
unit of work then leaves its writes there, and the owner sends them ahead of its own last statement (the
durable idempotency record), one round trip less. Whatever it does not take is sent when the block ends;
nothing is left behind unless the transaction itself rolls back.
"""

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import psycopg
from django.db import models, transaction


@dataclass(frozen=True)
class Statement:
    """SQL with positional parameters; `expect_rows`, if set, is the row count it must report, else `mismatch`."""

    sql: str
    params: Sequence[Any]
    expect_rows: int | None = None
    mismatch: Callable[[], Exception] | None = None


def db_values(model: type[models.Model], values: Mapping[str, Any]) -> list[Any]:
    """The values as the named fields of the model convert them for the database (what the ORM would send)."""
    connection = transaction.get_connection()
    return [model._meta.get_field(name).get_db_prep_save(value, connection) for name, value in values.items()]  # type: ignore[union-attr]


def carries_several(cursor: Any) -> bool:
    """Whether this (psycopg) cursor sends a query of several statements in one round trip: a client-side cursor
    does, over the simple query protocol; one with server-side binding cannot."""
    return isinstance(cursor, psycopg.ClientCursor)


def exists(model: type[models.Model], **where: Any) -> bool:
    """Whether a row matches `where` (equality on each field): a read, run at once (a pending lock goes first)."""
    connection = transaction.get_connection()
    condition, params = _pairs(model, where, " AND ", connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {connection.ops.quote_name(model._meta.db_table)} WHERE {condition} LIMIT 1", params
        )
        return cursor.fetchone() is not None


def insert(model: type[models.Model], values: Mapping[str, Any]) -> Statement:
    connection = transaction.get_connection()
    quote = connection.ops.quote_name
    columns = ", ".join(quote(model._meta.get_field(name).column) for name in values)  # type: ignore[union-attr]
    placeholders = ", ".join(["%s"] * len(values))
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({placeholders})"
    return Statement(sql, db_values(model, values))


def update(
    model: type[models.Model],
    values: Mapping[str, Any],
    *,
    where: Mapping[str, Any],
    mismatch: Callable[[], Exception],
) -> Statement:
    """An UPDATE of the one row matching `where` (equality on each field); another row count raises `mismatch`."""
    connection = transaction.get_connection()
    assignments, set_params = _pairs(model, values, ", ", connection)
    condition, where_params = _pairs(model, where, " AND ", connection)
    return Statement(
        f"UPDATE {connection.ops.quote_name(model._meta.db_table)} SET {assignments} WHERE {condition}",
        [*set_params, *where_params],
        expect_rows=1,
        mismatch=mismatch,
    )


def delete(model: type[models.Model], *, where: Mapping[str, Any]) -> Statement:
    """A DELETE of the rows matching `where` (equality on each field), however many there are (none too)."""
    connection = transaction.get_connection()
    condition, params = _pairs(model, where, " AND ", connection)
    return Statement(f"DELETE FROM {connection.ops.quote_name(model._meta.db_table)} WHERE {condition}", params)


def _pairs(model: type[models.Model], named: Mapping[str, Any], joiner: str, connection: Any) -> tuple[str, list[Any]]:
    """`"column" = %s` for each named field, joined, and the values as the fields convert them for the database."""
    columns = (model._meta.get_field(name).column for name in named)  # type: ignore[union-attr]
    return joiner.join(f"{connection.ops.quote_name(column)} = %s" for column in columns), db_values(model, named)


_DEFERRED: ContextVar[list[Statement] | None] = ContextVar("deferred_writes", default=None)


@contextmanager
def deferred() -> Iterator[list[Statement]]:
    """Inside a transaction: units of work in this block leave their writes in the list this yields.

    The caller sends them with its own next statement (`execute_together([*writes, ...])`, then clears the
    list); what is still there when the block ends normally is sent then. If the block raises, or the
    transaction is marked for rollback, they are dropped with it.
    """
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise RuntimeError("Deferred writes need a transaction to belong to.")
    writes: list[Statement] = []
    token = _DEFERRED.set(writes)
    try:
        yield writes
    finally:
        _DEFERRED.reset(token)
    if writes and not connection.needs_rollback:
        execute_together(writes)
        writes.clear()


def send_or_defer(statements: Sequence[Statement]) -> None:
    """Send the statements now, or leave them to the enclosing deferred() block, in order."""
    writes = _DEFERRED.get()
    if writes is None:
        execute_together(statements)
    else:
        writes.extend(statements)


def execute_together(statements: Sequence[Statement]) -> Any:
    """Run the statements in order in the current transaction; raise a statement's `mismatch` on a wrong row count.

    Returns the first row of the last statement's result (None if it returned none).
    """
    if not statements:
        return None
    connection = transaction.get_connection()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and carries_several(cursor.cursor):
            cursor.execute("; ".join(s.sql for s in statements), [p for s in statements for p in s.params])
            for index, statement in enumerate(statements):
                if index:
                    cursor.nextset()
                _check(statement, cursor.rowcount)
        else:
            for statement in statements:
                cursor.execute(statement.sql, statement.params)
                _check(statement, cursor.rowcount)
        return cursor.fetchone() if cursor.description else None


def _check(statement: Statement, rows: int) -> None:
    if statement.expect_rows is not None and rows != statement.expect_rows:
        assert statement.mismatch is not None
        raise statement.mismatch()
