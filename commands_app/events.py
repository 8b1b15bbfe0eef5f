"""Domain events: what happened on the write side. Frozen dataclasses, standard library only.

Their payloads are documented in docs/events.md; they leave this app only as JSON envelopes.
"""

from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True, kw_only=True)
class DomainEvent:
    schema_version = 1


@dataclass(frozen=True, kw_only=True)
class CustomerRegistered(DomainEvent):
    customer_id: UUID
    first_name: str
    last_name: str
    email: str
