"""Logging: one line per command when it leaves, with outcome and duration (or the traceback if it crashed)."""

import time

import structlog

from commands_app.commands import Command
from commands_app.mediator import CommandContext, CommandOutcome, Next

log = structlog.get_logger("commands")


class LoggingMiddleware:
    def __call__(self, command: Command, context: CommandContext, call_next: Next) -> CommandOutcome:
        started = time.perf_counter()
        try:
            outcome = call_next(command, context)
        except Exception:
            log.exception("command.crashed", command=type(command).__name__, command_id=str(command.command_id))
            raise
        log.info(
            "command.completed",
            command=type(command).__name__,
            command_id=str(command.command_id),
            status=outcome.status_code,
            error=outcome.error.code if outcome.error else None,
            replayed=outcome.replayed,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )
        return outcome
