"""Metrics: a latency histogram by command and outcome, for the Prometheus endpoint."""

import time

from prometheus_client import Histogram

from commands_app.commands import Command
from commands_app.mediator import CommandContext, CommandOutcome, Next

COMMAND_LATENCY = Histogram(
    "cqrs_command_duration_seconds",
    "Time to handle one command through the mediator pipeline.",
    ["command", "outcome"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


class MetricsMiddleware:
    def __call__(self, command: Command, context: CommandContext, call_next: Next) -> CommandOutcome:
        started = time.perf_counter()
        outcome_label = "exception"
        try:
            outcome = call_next(command, context)
            outcome_label = outcome.error.code if outcome.error else "ok"
            return outcome
        finally:
            COMMAND_LATENCY.labels(type(command).__name__, outcome_label).observe(time.perf_counter() - started)
