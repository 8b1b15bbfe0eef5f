"""One way to build and send SQL for the write side, the outbox and the projections.

Statements are built from a model's metadata (its table, its columns, its fields' own conversion of values), in
the dialect of the database, which is chosen once per connection (`dialect()`): what PostgreSQL and SQLite do
differently lives in sqlkit/dialects.py and nowhere else. A `Transaction` stages writes and sends them with its
owner's trailing statements; `send()` runs statements in order, in one round trip where the dialect allows.

This package imports none of the apps (an import-linter contract), so the write side, the outbox and the read
side can all use it without importing each other.
"""

from sqlkit.build import (
    OnConflict,
    decode,
    delete,
    exists,
    field_values,
    insert,
    select,
    update,
    update_many,
    where_in,
)
from sqlkit.dialects import Dialect, dialect
from sqlkit.statement import Outcome, RowCountMismatch, Statement
from sqlkit.transaction import Transaction, send

__all__ = [
    "Dialect",
    "OnConflict",
    "Outcome",
    "RowCountMismatch",
    "Statement",
    "Transaction",
    "decode",
    "delete",
    "dialect",
    "exists",
    "field_values",
    "insert",
    "select",
    "send",
    "update",
    "update_many",
    "where_in",
]
