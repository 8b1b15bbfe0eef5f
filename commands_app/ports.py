"""What handlers are written against: the unit of work and its repositories as Protocols, and a command's registration.

Handlers import this module, never the database: behind these Protocols is the SQL unit of work
(commands_app/unit_of_work.py) in the service, and an in-memory fake (tests/fakes.py) in the handlers' unit
tests. A handler takes its command and a unit of work, reads through repositories, decides with the aggregates,
stages what changed with add() and save(), and returns a Result: Ok keeps the changes (the owner of the
transaction writes them, with the aggregates' events, and commits), an Error keeps nothing (what it staged is
dropped; our handlers stage nothing before an error, which their unit tests check).
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from commands_app.commands import Command
from commands_app.domain.aggregate import Aggregate
from commands_app.result import Result, WrittenVersion

A = TypeVar("A", bound=Aggregate)

# Scopes a command may be sent with. Saga steps need "system", which no API client can hold.
WRITE, CATALOG, SYSTEM = frozenset({"write"}), frozenset({"catalog"}), frozenset({"system"})


@dataclass(frozen=True)
class Lock:
    """A lock on one aggregate (or one unique value, such as an email), held until the transaction ends: every
    transaction that takes the same lock waits for this one."""

    namespace: str
    key: str

    @classmethod
    def on(cls, namespace: str, key: object) -> "Lock":
        return cls(namespace, str(key))


class Repository(Protocol[A]):
    """The aggregates of one type. Reads run at once; `after_locks` are taken first, in the same round trip, so
    the read sees every transaction that held one of them before. Writes are staged until the transaction's
    owner writes them (and fail then, rolling everything back, if the row moved under its lock)."""

    def get(self, key: Any, *, after_locks: Sequence[Lock] = ()) -> A | None: ...

    def get_many(self, keys: Iterable[Any], *, after_locks: Sequence[Lock] = ()) -> dict[Any, A]:
        """The aggregates that exist among `keys`, by key, read in one go."""
        ...

    def exists(self, key: Any, *, after_locks: Sequence[Lock] = ()) -> bool: ...

    def exists_where(self, *, after_locks: Sequence[Lock] = (), **fields: Any) -> bool:
        """Whether an aggregate has these values (equality on each field), such as a customer with this email."""
        ...

    def add(self, aggregate: A) -> None:
        """Stage a new aggregate's row."""
        ...

    def save(self, aggregate: A) -> None:
        """Stage the changes of an aggregate this unit of work read, checked against the version it was read at."""
        ...


class PaymentTokens(Protocol):
    """Orders' payment tokens (the customer's card secret at the provider) while their authorization is undecided:
    kept apart from the order, never in an event. keep() and forget() are staged with the other writes."""

    def keep(self, order_id: Any, token: str) -> None: ...

    def get(self, order_id: Any) -> str | None:
        """The order's token, read at once (under the order's lock, which its handler holds)."""
        ...

    def forget(self, order_id: Any) -> None: ...


class CustomerKeys(Protocol):
    """The keys that seal customers' personal data in events (the unit of work seals with them)."""

    def is_erased(self, customer_id: Any) -> bool:
        """Whether the customer's key was destroyed (read at once)."""
        ...

    def destroy(self, customer_id: Any) -> None:
        """Destroy the customer's key, for good (staged with the other writes)."""
        ...


class UnitOfWork(Protocol):
    """One command's access to the write model, inside a transaction its owner began and will end."""

    @property
    def payment_tokens(self) -> PaymentTokens: ...

    @property
    def customer_keys(self) -> CustomerKeys: ...

    def repository(self, aggregate_type: type[A]) -> Repository[A]: ...

    def lock(self, *locks: Lock) -> None:
        """Take these locks now, for a handler that has nothing to read after them (a read takes its own)."""
        ...


class StagingUnitOfWork(UnitOfWork, Protocol):
    """What the result mapper needs besides the handler's view."""

    def stage_events(self) -> tuple[WrittenVersion, ...]:
        """After an Ok: stage the changed aggregates' events as outbox rows (refusing an aggregate changed and
        not saved); the aggregates and versions written."""
        ...


Handler = Callable[..., Result[Any]]


@dataclass(frozen=True)
class CommandRegistration:
    """A handler module's registration, discovered by the composition root (commands_app/bootstrap.py).

    `handler(command, uow, **collaborators)`: keyword-only parameters are bound by name to the collaborators
    the composition root has (the payment `provider`). `scopes`: any of them may send the command. Its HTTP
    status on success, which the command endpoint answers and documents."""

    command: type[Command]
    handler: Handler
    scopes: frozenset[str]
    success_status: int = 200
