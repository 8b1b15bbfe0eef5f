"""A unit of work's writes as statements, sent together at its commit: one round trip on PostgreSQL.

Each statement is built from its model's metadata (columns, and the fields' own conversion of each value), so
what reaches the table is what the ORM would have written. On PostgreSQL the statements go as one query of
several statements (psycopg's client-side cursor sends it over the simple query protocol); they run in order,
in the caller's transaction, and each reports its own row count. Elsewhere (SQLite) they run one by one.
"""

from collections.abc import Callable, Mapping, Sequence
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


def insert(model: type[models.Model], values: Mapping[str, Any]) -> Statement:
    connection = transaction.get_connection()
    quote = connection.ops.quote_name
    fields = [model._meta.get_field(name) for name in values]
    columns = ", ".join(quote(field.column) for field in fields)  # type: ignore[union-attr]
    params = [field.get_db_prep_save(values[field.name], connection) for field in fields]  # type: ignore[union-attr]
    placeholders = ", ".join(["%s"] * len(fields))
    return Statement(f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({placeholders})", params)


def update(
    model: type[models.Model],
    values: Mapping[str, Any],
    *,
    where: Mapping[str, Any],
    mismatch: Callable[[], Exception],
) -> Statement:
    """An UPDATE of the one row matching `where` (equality on each field); another row count raises `mismatch`."""
    connection = transaction.get_connection()
    quote = connection.ops.quote_name

    def pairs(named: Mapping[str, Any], joiner: str) -> tuple[str, list[Any]]:
        fields = [model._meta.get_field(name) for name in named]
        text = joiner.join(f"{quote(field.column)} = %s" for field in fields)  # type: ignore[union-attr]
        return text, [field.get_db_prep_save(named[field.name], connection) for field in fields]  # type: ignore[union-attr]

    assignments, set_params = pairs(values, ", ")
    condition, where_params = pairs(where, " AND ")
    return Statement(
        f"UPDATE {quote(model._meta.db_table)} SET {assignments} WHERE {condition}",
        [*set_params, *where_params],
        expect_rows=1,
        mismatch=mismatch,
    )


def execute_together(statements: Sequence[Statement]) -> None:
    """Run the statements in order in the current transaction; raise a statement's `mismatch` on a wrong row count."""
    if not statements:
        return
    connection = transaction.get_connection()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and isinstance(cursor.cursor, psycopg.ClientCursor):
            cursor.execute("; ".join(s.sql for s in statements), [p for s in statements for p in s.params])
            for index, statement in enumerate(statements):
                if index:
                    cursor.nextset()
                _check(statement, cursor.rowcount)
        else:
            for statement in statements:
                cursor.execute(statement.sql, statement.params)
                _check(statement, cursor.rowcount)


def _check(statement: Statement, rows: int) -> None:
    if statement.expect_rows is not None and rows != statement.expect_rows:
        assert statement.mismatch is not None
        raise statement.mismatch()
