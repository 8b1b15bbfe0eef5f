"""An in-memory unit of work for the handlers' unit tests: the ports of commands_app/ports.py over dicts.

It keeps what a test needs to see: the aggregates stored (as committed), a journal of the locks and reads in
the order the handler made them, the writes it staged, and the events committed. `decide()` does with a
handler's answer what the pipeline does (commands_app/middleware/result_mapper.py and the transaction's owner):
an Ok stages the events and commits, an Error rolls back. tests/integration/test_repository_port.py runs the
same checks against this fake and the SQL unit of work, so the fake behaves as the real one does.
"""

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from commands_app.domain.aggregate import Aggregate
from commands_app.events import DomainEvent
from commands_app.ports import Lock
from commands_app.repository import ConcurrencyError
from commands_app.result import Error, Ok, Result, WrittenVersion

A = TypeVar("A", bound=Aggregate)


class DuplicateKey(Exception):
    """An aggregate added with the key of one that exists (the SQL unit of work meets the primary key)."""


@dataclass(frozen=True)
class Read:
    aggregate_type: str
    keys: tuple[Any, ...]


class FakeRepository(Generic[A]):
    def __init__(self, uow: "FakeUnitOfWork", aggregate_type: type[A]) -> None:
        self._uow = uow
        self._type = aggregate_type

    @property
    def _stored(self) -> dict[Any, Aggregate]:
        return self._uow.stored.get(self._type, {})

    def get(self, key: Any, *, after_locks: Sequence[Lock] = ()) -> A | None:
        return self.get_many([key], after_locks=after_locks).get(key)

    def get_many(self, keys: Iterable[Any], *, after_locks: Sequence[Lock] = ()) -> dict[Any, A]:
        keys = list(keys)
        self._uow.lock(*after_locks)
        self._uow.journal.append(Read(self._type.aggregate_type, tuple(keys)))
        found = {}
        for key in sorted(set(keys), key=str):
            if key in self._stored:
                found[key] = self._uow.loaded(copy.deepcopy(self._stored[key]))
        return found  # type: ignore[return-value]

    def exists(self, key: Any, *, after_locks: Sequence[Lock] = ()) -> bool:
        self._uow.lock(*after_locks)
        self._uow.journal.append(Read(self._type.aggregate_type, (key,)))
        return key in self._stored

    def exists_where(self, *, after_locks: Sequence[Lock] = (), **fields: Any) -> bool:
        self._uow.lock(*after_locks)
        self._uow.journal.append(Read(self._type.aggregate_type, tuple(sorted(fields.items()))))
        return any(all(getattr(a, name) == value for name, value in fields.items()) for a in self._stored.values())

    def add(self, aggregate: A) -> None:
        self._uow.staged.append(("add", aggregate, 0))
        self._uow.seen.append(aggregate)

    def save(self, aggregate: A) -> None:
        loaded = self._uow.loaded_versions.get(id(aggregate))
        if loaded is None:
            raise RuntimeError(f"{aggregate.aggregate_type} {aggregate.aggregate_id} was not read by this unit of work")
        self._uow.staged.append(("save", aggregate, loaded))


class FakePaymentTokens:
    """Payment tokens by order id; keep() and forget() are staged, and land at the unit of work's commit."""

    def __init__(self, uow: "FakeUnitOfWork") -> None:
        self._uow = uow

    def keep(self, order_id: Any, token: str) -> None:
        self._uow.staged_tokens.append((order_id, token))

    def get(self, order_id: Any) -> str | None:
        return self._uow.tokens.get(order_id)

    def forget(self, order_id: Any) -> None:
        self._uow.staged_tokens.append((order_id, None))


class FakeCustomerKeys:
    """Customers whose key is destroyed (committed), and destroy() calls staged."""

    def __init__(self, uow: "FakeUnitOfWork") -> None:
        self._uow = uow

    def is_erased(self, customer_id: Any) -> bool:
        return customer_id in self._uow.erased

    def destroy(self, customer_id: Any) -> None:
        self._uow.staged_erasures.append(customer_id)


@dataclass
class FakeUnitOfWork:
    """Holds `stored` aggregates as committed state; each read hands out a copy, as a database would."""

    stored: dict[type[Aggregate], dict[Any, Aggregate]] = field(default_factory=dict)
    journal: list[Lock | Read] = field(default_factory=list)
    staged: list[tuple[str, Aggregate, int]] = field(default_factory=list)
    seen: list[Aggregate] = field(default_factory=list)
    loaded_versions: dict[int, int] = field(default_factory=dict)
    events: list[DomainEvent] = field(default_factory=list)
    # Payment tokens by order id (committed), and keep() (a token) or forget() (None) calls staged
    tokens: dict[Any, str] = field(default_factory=dict)
    staged_tokens: list[tuple[Any, str | None]] = field(default_factory=list)
    # Customers whose key is destroyed (committed), and destroy() calls staged
    erased: set[Any] = field(default_factory=set)
    staged_erasures: list[Any] = field(default_factory=list)
    committed: bool = False
    rolled_back_with_staged_writes: bool = False

    @classmethod
    def holding(cls, *aggregates: Aggregate) -> "FakeUnitOfWork":
        uow = cls()
        for aggregate in aggregates:
            uow.stored.setdefault(type(aggregate), {})[aggregate.key] = copy.deepcopy(aggregate)
        return uow

    # --- the handler's view (commands_app.ports.UnitOfWork) --------------------------------------------------
    @property
    def payment_tokens(self) -> FakePaymentTokens:
        return FakePaymentTokens(self)

    @property
    def customer_keys(self) -> FakeCustomerKeys:
        return FakeCustomerKeys(self)

    def repository(self, aggregate_type: type[A]) -> FakeRepository[A]:
        return FakeRepository(self, aggregate_type)

    def lock(self, *locks: Lock) -> None:
        self.journal.extend(locks)

    # --- the owner's view (commands_app.ports.StagingUnitOfWork) -------------------------------------------
    def stage_events(self) -> tuple[WrittenVersion, ...]:
        written_ids = {id(aggregate) for _, aggregate, _ in self.staged}
        unsaved = [a for a in self.seen if a.pending_events and id(a) not in written_ids]
        if unsaved:
            raise RuntimeError(f"Changed aggregates were not saved: {unsaved}")
        written = []
        for aggregate in self.seen:
            if aggregate.pending_events:
                self.events.extend(event for _, event in aggregate.pending_events)
                written.append(WrittenVersion(aggregate.aggregate_type, aggregate.aggregate_id, aggregate.version))
                aggregate.pending_events.clear()
        return tuple(written)

    def commit(self) -> None:
        """Write the staged aggregates, all or none: a duplicate key or a version moved under its lock fails it."""
        for operation, aggregate, loaded_version in self.staged:
            table = self.stored.get(type(aggregate), {})
            if operation == "add" and aggregate.key in table:
                raise DuplicateKey(f"{aggregate.aggregate_type} {aggregate.aggregate_id}")
            if operation == "save" and table[aggregate.key].version != loaded_version:
                raise ConcurrencyError(f"{aggregate.aggregate_type} {aggregate.aggregate_id} moved under its lock")
        for _, aggregate, _ in self.staged:
            self.stored.setdefault(type(aggregate), {})[aggregate.key] = copy.deepcopy(aggregate)
        for order_id, token in self.staged_tokens:
            if token is None:
                self.tokens.pop(order_id, None)
            else:
                self.tokens[order_id] = token
        self.erased.update(self.staged_erasures)
        self.staged.clear()
        self.staged_tokens.clear()
        self.staged_erasures.clear()
        self.committed = True

    def roll_back(self) -> None:
        self.rolled_back_with_staged_writes = bool(self.staged or self.staged_tokens or self.staged_erasures)
        self.staged.clear()
        self.staged_tokens.clear()
        self.staged_erasures.clear()
        self.events.clear()

    # --- helpers -------------------------------------------------------------------------------------------
    def loaded(self, aggregate: A) -> A:
        self.seen.append(aggregate)
        self.loaded_versions[id(aggregate)] = aggregate.version
        return aggregate

    @property
    def locks(self) -> list[Lock]:
        return [entry for entry in self.journal if isinstance(entry, Lock)]

    def get(self, aggregate_type: type[A], key: Any) -> A:
        """The committed aggregate (a test's `then`)."""
        return self.stored[aggregate_type][key]  # type: ignore[return-value]

    def event_types(self) -> list[str]:
        return [type(event).__name__ for event in self.events]


def decide(handler: Any, command: Any, uow: FakeUnitOfWork, **collaborators: Any) -> Result[Any]:
    """The handler's answer, acted on as the pipeline acts: Ok commits its writes and events, Error keeps nothing."""
    result = handler(command, uow, **collaborators)
    if isinstance(result, Ok):
        uow.stage_events()
        uow.commit()
    else:
        assert isinstance(result, Error)
        uow.roll_back()
    return result


def assert_nothing_committed(uow: FakeUnitOfWork, before: dict[type[Aggregate], dict[Any, Aggregate]]) -> None:
    """After an Error: nothing was committed, no event left, and the handler had staged nothing either."""
    assert not uow.committed
    assert uow.events == []
    assert not uow.rolled_back_with_staged_writes, "the handler staged writes and then answered an Error"
    assert uow.stored == before
