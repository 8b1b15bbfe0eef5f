"""What every aggregate shares: an identity, and a version that each recorded event advances by one."""

from dataclasses import dataclass, field
from typing import Any, ClassVar

from commands_app.events import DomainEvent
from commands_app.result import Error


@dataclass(kw_only=True)
class Aggregate:
    aggregate_type: ClassVar[str] = "Aggregate"
    # The field that identifies an aggregate of this type (its key in storage and in its events' envelopes).
    key_field: ClassVar[str]
    version: int = 0
    # Not stored: the events recorded since the aggregate was loaded, each with the version it reached.
    pending_events: list[tuple[int, DomainEvent]] = field(
        default_factory=list, repr=False, compare=False, metadata={"stored": False}
    )

    @property
    def key(self) -> Any:
        return getattr(self, self.key_field)

    @property
    def aggregate_id(self) -> str:
        return str(self.key)

    def record(self, event: DomainEvent) -> None:
        if event.aggregate_type != self.aggregate_type:
            raise TypeError(f"A {self.aggregate_type} cannot record {type(event).__name__}, an event of another type")
        self.version += 1
        self.pending_events.append((self.version, event))

    def check_version(self, expected: int | None) -> Error | None:
        """Optimistic concurrency for clients: a command may say which version it decided on."""
        if expected is not None and expected != self.version:
            return Error(
                "VERSION_CONFLICT",
                f"Expected version {expected}, but the {self.aggregate_type.lower()} is at version {self.version}.",
                {"expected_version": expected, "current_version": self.version},
            )
        return None

    @classmethod
    def not_found_code(cls) -> str:
        """One spelling for every aggregate: CUSTOMER_NOT_FOUND, ORDER_NOT_FOUND, ..."""
        return f"{cls.aggregate_type.upper()}_NOT_FOUND"

    @classmethod
    def not_found(cls, key: Any, *, field: str) -> Error:
        """The error for a command naming (in `field`) an aggregate of this type that does not exist."""
        return Error(cls.not_found_code(), f"No {cls.aggregate_type.lower()} {key}.", {"field": field})
