"""The saga's own records (its row, its lease, its step log) are written in transactions that commit without
waiting for the disk (PostgreSQL's synchronous_commit off, for those transactions only).

Why it is safe: every effect of a saga is a command, whose transaction commits synchronously with its
idempotency record. What a PostgreSQL crash may lose is the last fraction of a second of bookkeeping (WAL is
written in order, so never bookkeeping older than a later synchronous commit): the saga then resumes from an
earlier step, which replays its first answer through its deterministic key, or, for a saga whose start was
lost, beat's reconciliation starts it from the event log. A killed worker loses nothing: the commit itself is
the same. Each such commit saves a WAL flush (docs/benchmarks.md, "Orders").
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from django.db import connection, transaction

import sqlkit


@contextmanager
def records() -> Iterator[None]:
    """A transaction for the saga's bookkeeping: atomic as any, durable once the next WAL flush happens. Inside
    another transaction it is a savepoint of it, and that transaction's commit stays as its owner made it."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        sqlkit.send(_not_waiting_for_the_disk(outermost))
        yield


@contextmanager
def transaction_of_records() -> Iterator[sqlkit.Transaction]:
    """As `records()`, as a transaction to stage and flush statements in: its first flush carries the setting,
    so it costs no round trip of its own."""
    outermost = not connection.in_atomic_block
    with sqlkit.Transaction.begin() as records:
        records.stage(*_not_waiting_for_the_disk(outermost))
        yield records


def write(statements: Sequence[sqlkit.Statement]) -> list[sqlkit.Outcome]:
    """The statements as one transaction of bookkeeping, sent in one round trip between its BEGIN and COMMIT; the
    outcome of each. A statement whose row count is not the one it expects raises its mismatch, and nothing of
    the transaction is kept (the statements after it were sent too, and roll back with it)."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        first = _not_waiting_for_the_disk(outermost)
        return sqlkit.send([*first, *statements])[len(first) :]


def _not_waiting_for_the_disk(outermost: bool) -> list[sqlkit.Statement]:
    """SET LOCAL synchronous_commit off, in a transaction of our own only (never in a caller's, whose commit it
    would change); nothing where the dialect has no such setting."""
    statement = sqlkit.dialect().commit_without_waiting_for_disk() if outermost else None
    return [statement] if statement is not None else []
