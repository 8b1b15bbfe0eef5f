"""Tracing: binds correlation and causation ids to every log line the command produces (the trace and span ids
join them when OpenTelemetry tracing is on: the mediator runs each command in a span, observability/tracing.py).

The command's own id becomes the causation id of the events it writes (see the unit of work metadata).
"""

import structlog

from commands_app.commands import Command
from commands_app.mediator import CommandContext, CommandOutcome, Next


class TracingMiddleware:
    def __call__(self, command: Command, context: CommandContext, call_next: Next) -> CommandOutcome:
        bound = {
            "correlation_id": context.correlation_id,
            "causation_id": context.causation_id,
            "command_id": str(command.command_id),
            "client_id": context.client_id,
        }
        with structlog.contextvars.bound_contextvars(**bound):
            return call_next(command, context)
