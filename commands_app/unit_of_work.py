"""The SQL unit of work: one command's reads and staged writes in a transaction that its owner began.

The owner (the idempotency middleware; the result mapper when nothing above it began one; a caller that sends a
command inside a transaction of its own) hands the unit of work its `sqlkit.Transaction`. Reads run at once,
each with the locks the handler asked for in the same round trip (`Repository.get(key, after_locks=...)`);
adds and saves are staged in the transaction; after an Ok, `stage_events()` stages the outbox rows of the
events; the owner then sends everything with its own last statement (`Transaction.flush`) and commits. On
PostgreSQL a lock is `pg_advisory_xact_lock`; on SQLite (the embedded default) none is needed, since a
transaction that writes holds the database's one write lock.
"""

import hashlib
from collections.abc import Sequence
from typing import Any, TypeVar

from django.utils import timezone

import sqlkit
from commands_app.domain.aggregate import Aggregate
from commands_app.events import DomainEvent
from commands_app.models import CustomerKey, PaymentToken
from commands_app.ports import Lock
from commands_app.repository import Aggregates, SqlRepository
from commands_app.result import WrittenVersion
from commands_app.serialization import to_json_value
from outbox_app import outbox, sealing

A = TypeVar("A", bound=Aggregate)


def event_payload(event: DomainEvent) -> dict[str, Any]:
    payload = to_json_value(event)
    assert isinstance(payload, dict)
    return payload


def advisory_lock_key(namespace: str, key: str) -> int:
    """A stable signed 64-bit key for pg_advisory_xact_lock (Python's hash() varies per process)."""
    digest = hashlib.blake2b(f"{namespace}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class SqlPaymentTokens:
    """commands_app.models.PaymentToken rows, staged with the unit of work's other writes."""

    def __init__(self, unit: "SqlUnitOfWork") -> None:
        self._unit = unit

    def keep(self, order_id: Any, token: str) -> None:
        self._unit.stage_side_write(sqlkit.insert(PaymentToken, [{"order_id": order_id, "token": token}]))

    def get(self, order_id: Any) -> str | None:
        (read,) = sqlkit.select(PaymentToken, ["token"], where={"order_id": order_id})
        rows = self._unit.fetch(read, ())
        return str(rows[0][0]) if rows else None

    def forget(self, order_id: Any) -> None:
        self._unit.stage_side_write([sqlkit.delete(PaymentToken, where={"order_id": order_id})])


class SqlCustomerKeys:
    """commands_app.models.CustomerKey rows: the keys that seal customers' personal data in events."""

    def __init__(self, unit: "SqlUnitOfWork") -> None:
        self._unit = unit
        # customer id -> its key, or None once erased
        self._known: dict[str, bytes | None] = {}

    def is_erased(self, customer_id: Any) -> bool:
        (read,) = sqlkit.select(CustomerKey, ["erased_at"], where={"customer_id": customer_id})
        rows = self._unit.fetch(read, ())
        return bool(rows) and rows[0][0] is not None

    def destroy(self, customer_id: Any) -> None:
        self._known[str(customer_id)] = None
        destroyed = {"customer_id": customer_id, "key": None, "erased_at": timezone.now()}
        upsert = sqlkit.OnConflict(target=("customer_id",), update=("key", "erased_at"))
        self._unit.stage_side_write(sqlkit.insert(CustomerKey, [destroyed], on_conflict=upsert))

    def key_of_new_customer(self, customer_id: str) -> bytes:
        """A key for a customer this unit of work registers (staged: no round trip)."""
        key = self._known[customer_id] = sealing.new_key()
        self._unit.stage_side_write(sqlkit.insert(CustomerKey, [{"customer_id": customer_id, "key": key}]))
        return key

    def key_of(self, customer_id: str) -> bytes | None:
        """The customer's key (None: erased), created now for a customer that has none yet (registered before
        keys existed). One statement that concurrent units of work agree on: the first key inserted wins."""
        if customer_id in self._known:
            return self._known[customer_id]
        (upsert,) = sqlkit.insert(
            CustomerKey,
            [{"customer_id": customer_id, "key": sealing.new_key()}],
            on_conflict=sqlkit.OnConflict(target=("customer_id",), update=("customer_id",)),
            returning=["key"],
        )
        (stored,) = self._unit.fetch(upsert, ())
        key = self._known[customer_id] = None if stored[0] is None else bytes(stored[0])
        return key


class SqlUnitOfWork:
    def __init__(self, *, transaction: sqlkit.Transaction, aggregates: Aggregates, metadata: dict[str, Any]) -> None:
        self.transaction = transaction
        self.aggregates = aggregates
        self.metadata = metadata
        self.payment_tokens = SqlPaymentTokens(self)
        self.customer_keys = SqlCustomerKeys(self)
        self._dialect = sqlkit.dialect(transaction.using)
        self._repositories: dict[type[Aggregate], SqlRepository[Any]] = {}
        self._seen: list[Aggregate] = []
        # id(aggregate) -> its stored values when read (None: added by this unit of work)
        self._loaded: dict[int, dict[str, Any] | None] = {}
        self._written: set[int] = set()

    def repository(self, aggregate_type: type[A]) -> SqlRepository[A]:
        repository = self._repositories.get(aggregate_type)
        if repository is None:
            repository = self._repositories[aggregate_type] = SqlRepository(
                self.aggregates.registration(aggregate_type), self
            )
        return repository

    def lock(self, *locks: Lock) -> None:
        statements = self._lock_statements(locks)
        if statements:
            sqlkit.send(statements, using=self.transaction.using)

    def stage_events(self) -> tuple[WrittenVersion, ...]:
        unsaved = [a for a in self._seen if a.pending_events and id(a) not in self._written]
        if unsaved:
            raise RuntimeError(f"Changed aggregates were not saved: {unsaved}")
        new_events: list[outbox.NewEvent] = []
        written = []
        for aggregate in self._seen:
            for version, event in aggregate.pending_events:
                new_events.append(
                    outbox.NewEvent(
                        event_type=type(event).__name__,
                        schema_version=event.schema_version,
                        aggregate_type=aggregate.aggregate_type,
                        aggregate_id=aggregate.aggregate_id,
                        aggregate_version=version,
                        payload=self._sealed_payload(aggregate, event),
                        metadata=self.metadata,
                    )
                )
            if aggregate.pending_events:
                written.append(WrittenVersion(aggregate.aggregate_type, aggregate.aggregate_id, aggregate.version))
            aggregate.pending_events.clear()
        outbox.stage(self.transaction, new_events)
        return tuple(written)

    def _sealed_payload(self, aggregate: Aggregate, event: DomainEvent) -> dict[str, Any]:
        """The event's payload with its personal data sealed by the key of the customer it names."""
        payload = event_payload(event)
        if not any(payload.get(name) for name in event.personal_fields):
            return payload
        subject = str(payload["customer_id"])
        registered_here = self._loaded.get(id(aggregate), {}) is None and aggregate.aggregate_id == subject
        keys = self.customer_keys
        key = keys.key_of_new_customer(subject) if registered_here else keys.key_of(subject)
        return sealing.seal(payload, event.personal_fields, subject=subject, key=key)

    # --- for the repositories ------------------------------------------------------------------------------
    def fetch(self, read: sqlkit.Statement, after_locks: Sequence[Lock]) -> list[tuple[Any, ...]]:
        return self.transaction.fetch(read, after=self._lock_statements(after_locks))

    def track(self, aggregate: Aggregate, *, loaded: dict[str, Any] | None) -> None:
        self._seen.append(aggregate)
        self._loaded[id(aggregate)] = loaded

    def loaded_values(self, aggregate: Aggregate) -> dict[str, Any] | None:
        return self._loaded.get(id(aggregate))

    def stage_write(self, aggregate: Aggregate, statements: Sequence[sqlkit.Statement]) -> None:
        self.transaction.stage(*statements)
        self._written.add(id(aggregate))

    def stage_side_write(self, statements: Sequence[sqlkit.Statement]) -> None:
        """A write that is no aggregate's (a payment token)."""
        self.transaction.stage(*statements)

    def _lock_statements(self, locks: Sequence[Lock]) -> list[sqlkit.Statement]:
        statements = [self._dialect.advisory_lock(advisory_lock_key(lock.namespace, lock.key)) for lock in locks]
        return [statement for statement in statements if statement is not None]
