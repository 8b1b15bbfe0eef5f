"""The unit of work: one database transaction around a handler, with its aggregates' events as outbox rows."""

import hashlib
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from django.db import connection, transaction

from commands_app.domain.aggregate import Aggregate
from commands_app.events import DomainEvent
from commands_app.repositories import CustomerRepository, OrderRepository, PaymentTokens, ProductRepository
from commands_app.serialization import to_json_value
from commands_app.statements import Statement, carries_several, send_or_defer
from outbox_app import outbox

_LOCK = "SELECT pg_advisory_xact_lock(%s)"


@dataclass(frozen=True)
class WrittenVersion:
    aggregate_type: str
    aggregate_id: str
    version: int


def event_payload(event: DomainEvent) -> dict[str, Any]:
    payload = to_json_value(event)
    assert isinstance(payload, dict)
    return payload


def advisory_lock_key(namespace: str, key: str) -> int:
    """A stable signed 64-bit key for pg_advisory_xact_lock (Python's hash() varies per process)."""
    digest = hashlib.blake2b(f"{namespace}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class UnitOfWork:
    """`with uow: ... uow.commit()`; an exception, or leaving the block without commit(), writes nothing.

    Repositories stage their writes; commit() sends them with the outbox rows in one round trip, or leaves
    them to the transaction's owner to send with its last statement (commands_app/statements.py). A lock
    taken with lock() travels with the first read after it, or with the writes if no read came.

    Inside a transaction already (the idempotency middleware's) it takes no savepoint of its own: an
    exception rolls back the enclosing transaction, which its owner does anyway. Leaving without commit()
    is for answers that wrote nothing (a business error, an already-done step); a block that saved an
    aggregate and then left without commit() is a bug, and raises.
    """

    def __init__(self, *, metadata: dict[str, Any]) -> None:
        self.metadata = metadata
        self._writes: list[Statement] = []
        self.customers = CustomerRepository(self._writes)
        self.products = ProductRepository(self._writes)
        self.orders = OrderRepository(self._writes)
        self.payment_tokens = PaymentTokens(self._writes)
        self.written: list[WrittenVersion] = []
        self._atomic: Any = None
        self._committed = False

    def __enter__(self) -> "UnitOfWork":
        self._nested = transaction.get_connection().in_atomic_block
        # savepoint=False: outermost this is the transaction itself; nested, the enclosing one is enough.
        self._atomic = transaction.atomic(savepoint=False)
        self._atomic.__enter__()
        self._committed = False
        self._pending_locks: list[int] = []
        self._hooks = ExitStack()
        if connection.vendor == "postgresql":
            self._hooks.enter_context(connection.execute_wrapper(self._locks_first))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._hooks.close()
        if exc_type is None and not self._committed:
            if self._wrote():
                error = RuntimeError("The unit of work wrote rows and was left without commit().")
                self._atomic.__exit__(RuntimeError, error, None)
                raise error
            if not self._nested:
                transaction.set_rollback(True)
        self._atomic.__exit__(exc_type, exc, tb)

    def lock(self, namespace: str, key: str) -> None:
        """Serialize every transaction on this aggregate (or unique key) until this one ends.

        The lock travels with the next statement, in the same round trip: `SELECT pg_advisory_xact_lock(k);`
        then that statement, as two statements of one query. PostgreSQL runs them in order and takes a fresh
        snapshot for the second, so the read that follows a lock sees every transaction that held it before.
        A handler always reads what it locked before it decides or calls out, so the lock is held by then.
        """
        if connection.vendor == "postgresql":
            self._pending_locks.append(advisory_lock_key(namespace, key))
        # SQLite (the embedded default) takes one database-wide write lock per transaction already.

    def _locks_first(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        """The execute wrapper that sends pending locks ahead of a statement (see lock())."""
        if not self._pending_locks:
            return execute(sql, params, many, context)
        keys, self._pending_locks = self._pending_locks, []
        lock_sql = f"{_LOCK}; " * len(keys)
        cursor = context["cursor"].cursor
        if many or not isinstance(params, list | tuple) or not carries_several(cursor):
            # Only a client-side cursor with positional parameters can carry them in one query.
            for key in keys:
                cursor.execute(_LOCK, [key])
            return execute(sql, params, many, context)
        result = execute(lock_sql + sql, [*keys, *params], many, context)
        for _ in keys:
            cursor.nextset()
        return result

    def commit(self) -> None:
        unsaved = [a for repo in (self.customers, self.products, self.orders) for a in repo.unsaved()]
        if unsaved:
            raise RuntimeError(f"Changed aggregates were not saved: {unsaved}")
        new_events: list[outbox.NewEvent] = []
        for aggregate in self._seen():
            for version, event in aggregate.pending_events:
                new_events.append(
                    outbox.NewEvent(
                        event_type=type(event).__name__,
                        schema_version=event.schema_version,
                        aggregate_type=aggregate.aggregate_type,
                        aggregate_id=aggregate.aggregate_id,
                        aggregate_version=version,
                        payload=event_payload(event),
                        metadata=self.metadata,
                    )
                )
            if aggregate.pending_events:
                self.written.append(WrittenVersion(aggregate.aggregate_type, aggregate.aggregate_id, aggregate.version))
            aggregate.pending_events.clear()
        if new_events:
            self._writes.append(Statement(*outbox.insert_rows(new_events)))
        # Locks not sent yet (no read came after them) go first, then the aggregates' rows and their outbox rows.
        locks = [Statement(_LOCK, [key]) for key in self._pending_locks]
        self._pending_locks = []
        send_or_defer([*locks, *self._writes])
        self._writes.clear()
        self._committed = True

    def _wrote(self) -> bool:
        return self.payment_tokens.wrote() or any(repo.wrote() for repo in (self.customers, self.products, self.orders))

    def _seen(self) -> list[Aggregate]:
        return [*self.customers.seen, *self.products.seen, *self.orders.seen]
