"""What every aggregate shares: a version that each recorded event advances by one."""

from dataclasses import dataclass, field

from commands_app.events import DomainEvent
from commands_app.result import Error


@dataclass(kw_only=True)
class Aggregate:
    aggregate_type = "Aggregate"
    version: int = 0
    pending_events: list[tuple[int, DomainEvent]] = field(default_factory=list, repr=False, compare=False)

    @property
    def aggregate_id(self) -> str:
        raise NotImplementedError

    def record(self, event: DomainEvent) -> None:
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
