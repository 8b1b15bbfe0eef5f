"""Commands sent at once from threads, all held at an advisory lock until PostgreSQL shows every one waiting on it."""

import threading
import time
from collections.abc import Sequence

from django.db import connection, connections

from commands_app.commands import Command
from commands_app.mediator import CommandContext, CommandOutcome, Mediator

# pg_locks shows a bigint advisory key as two 32-bit halves (classid, objid), with objsubid 1.
_WAITING = """
SELECT count(*) FROM pg_locks
WHERE locktype = 'advisory' AND NOT granted AND classid = %s AND objid = %s AND objsubid = 1
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


def sent_at_once(mediator: Mediator, commands: Sequence[Command], context: CommandContext, *, held_by: int) -> list:
    """Each command from a thread of its own; they queue on the lock `held_by`, which this holds until PostgreSQL
    shows every one of them waiting for it (so they race however slow the machine), then releases."""
    holder = connections.create_connection("default")
    holder.connect()
    holder.set_autocommit(False)
    with holder.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [held_by])
    outcomes: list[CommandOutcome] = []

    def send(command: Command) -> None:
        outcomes.append(mediator.send(command, context))
        connection.close()

    threads = [threading.Thread(target=send, args=(command,)) for command in commands]
    for thread in threads:
        thread.start()
    try:
        wait_until_waiting(held_by, len(threads))
    finally:
        holder.rollback()
        holder.close()
    for thread in threads:
        thread.join(timeout=10)
    return outcomes


def wait_until_waiting(key: int, count: int, *, timeout: float = 10.0) -> None:
    """Until `count` sessions wait for the advisory lock `key` (as pg_locks shows them)."""
    halves = [(key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF]
    observer = connections.create_connection("default")
    observer.connect()
    observer.set_autocommit(True)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with observer.cursor() as cursor:
                cursor.execute(_WAITING, halves)
                (waiting,) = cursor.fetchone()
            if waiting >= count:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"only {waiting} of {count} racers reached the lock within {timeout}s")
            time.sleep(0.005)
    finally:
        observer.close()
