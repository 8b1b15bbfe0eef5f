"""Commands: what a client asks the write side to do. Frozen dataclasses, standard library only."""

from dataclasses import dataclass, field
from uuid import UUID

from uuid_utils.compat import uuid7


@dataclass(frozen=True, kw_only=True)
class Command:
    idempotency_key: UUID
    command_id: UUID = field(default_factory=uuid7)


@dataclass(frozen=True, kw_only=True)
class RegisterCustomer(Command):
    first_name: str
    last_name: str
    email: str
