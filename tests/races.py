"""Commands sent at once from threads, all held at an advisory lock until every one of them is in."""

import threading
from collections.abc import Sequence

from django.db import connection, connections

from commands_app.commands import Command
from commands_app.mediator import CommandContext, CommandOutcome, Mediator


def sent_at_once(mediator: Mediator, commands: Sequence[Command], context: CommandContext, *, held_by: int) -> list:
    """Each command from a thread of its own; they wait on the lock `held_by`, which this holds for 0.5 s."""
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
    threading.Event().wait(0.5)
    holder.rollback()
    holder.close()
    for thread in threads:
        thread.join(timeout=10)
    return outcomes
