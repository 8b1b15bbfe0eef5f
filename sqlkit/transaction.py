"""Sending statements, and a transaction whose writes are staged for its owner's last round trip.

    with Transaction.begin() as tx:          # the owner: BEGIN (a savepoint inside another transaction)
        rows = tx.fetch(read, after=[lock])  # reads run at once; statements that must precede one go with it
        tx.stage(*writes)                    # whoever the owner hands tx to stages writes: nothing is sent yet
        outcomes = tx.flush(trailing)        # the owner: the staged writes and its own statements, one query
                                             # leaving the block: COMMIT (ROLLBACK on an exception or roll_back())

Who owns a transaction is whoever began it; the others get it as an argument and only stage. Writes staged after
the owner's last flush are sent when the block ends, before the commit; a transaction rolled back sends nothing.
"""

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from django.db import connections, transaction

from sqlkit.dialects import dialect
from sqlkit.statement import Outcome, Statement


def send(statements: Sequence[Statement], *, using: str = "default") -> list[Outcome]:
    """Run the statements in order, in the current transaction: one round trip where the dialect allows it.

    Each statement's `expect_rows` is checked (its `mismatch` raised); returns each statement's outcome."""
    present = [statement for statement in statements if statement is not None]
    if not present:
        return []
    with connections[using].cursor() as cursor:
        return dialect(using).send(cursor, present)


class Transaction:
    def __init__(self, *, using: str = "default") -> None:
        self.using = using
        self._staged: list[Statement] = []

    @classmethod
    @contextmanager
    def begin(cls, *, using: str = "default") -> Iterator["Transaction"]:
        with transaction.atomic(using=using):
            tx = cls(using=using)
            yield tx
            if tx._staged and not connections[using].needs_rollback:
                tx.flush()

    @property
    def staged(self) -> tuple[Statement, ...]:
        return tuple(self._staged)

    def stage(self, *statements: Statement) -> None:
        """Writes to send with the owner's next flush (or at the commit), in this order."""
        self._staged.extend(statements)

    def fetch(self, read: Statement, *, after: Sequence[Statement | None] = ()) -> list[tuple[object, ...]]:
        """Run `read` now and return its rows; the statements `after` (locks, say) run first, in the same round
        trip. Staged writes stay staged: a read never sees them (the reads of a unit of work come before its
        writes)."""
        return send([*[s for s in after if s is not None], read], using=self.using)[-1].rows

    def flush(self, *trailing: Statement) -> list[Outcome]:
        """Send the staged writes and then `trailing` (the owner's own statements) as one query; the outcomes
        of `trailing`. A statement with the wrong row count raises, and the transaction rolls back."""
        staged, self._staged = self._staged, []
        outcomes = send([*staged, *trailing], using=self.using)
        return outcomes[len(staged) :]

    def staged_so_far(self) -> int:
        """A mark for drop_staged_since(): the writes staged until now."""
        return len(self._staged)

    def drop_staged_since(self, mark: int) -> None:
        """Unstage what was staged after `mark` (a command that answered an error keeps nothing, whoever owns
        the transaction)."""
        del self._staged[mark:]

    def roll_back(self) -> None:
        """Nothing of this transaction is kept: the staged writes are dropped, and leaving the block rolls back."""
        self._staged.clear()
        transaction.set_rollback(True, using=self.using)

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the outermost transaction commits (never, if it rolls back)."""
        transaction.on_commit(callback, using=self.using)
