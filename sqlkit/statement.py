"""A statement to send, and what the database answered to it."""

from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any


class RowCountMismatch(Exception):
    """A statement reported another row count than the one it expected (and had no `mismatch` of its own)."""


@dataclass(frozen=True)
class Statement:
    """SQL with positional parameters.

    `expect_rows`, if set, is the row count the statement must report; another count raises `mismatch()` (or
    RowCountMismatch), which rolls back the transaction it ran in.
    """

    sql: str
    params: Sequence[Any] = ()
    expect_rows: int | None = None
    mismatch: Callable[[], Exception] | None = None

    def check(self, rows: int) -> None:
        if self.expect_rows is not None and rows != self.expect_rows:
            if self.mismatch is not None:
                raise self.mismatch()
            raise RowCountMismatch(f"expected {self.expect_rows} row(s), got {rows}: {self.sql[:200]}")


@dataclass(frozen=True)
class Outcome:
    """A statement's answer: its row count and the rows it returned (SELECT, or RETURNING)."""

    rowcount: int
    rows: list[tuple[Any, ...]] = field(default_factory=list)

    def first(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None


sending: ContextVar[Sequence[Statement]] = ContextVar("sqlkit_sending", default=())
"""The statements a query being sent holds, as written (placeholders, no values), while it is sent: for an execute
wrapper (the traces) to show a query of several statements whose values sqlkit quoted in itself as its statements,
without the values."""
