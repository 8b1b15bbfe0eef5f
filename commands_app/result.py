"""Results of handlers: business errors are values with a stable code, never exceptions."""

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Ok(Generic[T]):
    value: T


@dataclass(frozen=True)
class Error:
    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


Result = Ok[T] | Error


@dataclass(frozen=True)
class WrittenVersion:
    """An aggregate a command changed, at the version its events brought it to (for consistency tokens)."""

    aggregate_type: str
    aggregate_id: str
    version: int
