"""What every aggregate shares: a version that each recorded event advances by one."""

from dataclasses import dataclass, field

from commands_app.events import DomainEvent


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
