"""The event types the log holds, declared by the app that writes them, in its AppConfig.ready().

The producer declares each type once, with the JSON Schema of its payload. Consumers that must know every type
without importing the producer read them here: the webhooks app checks subscriptions against it, subscribes to
every type, and generates the AsyncAPI document of the published events from it.
"""

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class EventType:
    name: str
    aggregate_type: str
    schema_version: int
    # JSON Schema (draft 2020-12) of the payload as it is published.
    payload_schema: dict[str, Any] = field(compare=False)
    description: str = ""


_declared: dict[str, EventType] = {}


def declare(event_type: EventType) -> None:
    """Declare a type; declaring the same one again (a second ready()) is harmless, a different one is refused."""
    known = _declared.get(event_type.name)
    if known is not None and (known != event_type or known.payload_schema != event_type.payload_schema):
        raise ValueError(f"Event type {event_type.name} is declared twice, differently.")
    _declared[event_type.name] = event_type


def event_types() -> list[EventType]:
    """Every declared type, in declaration order."""
    return list(_declared.values())


def names() -> list[str]:
    return list(_declared)
