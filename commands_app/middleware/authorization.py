"""Authorization: each command type names the scopes that may send it; a missing policy denies (fail closed)."""

from collections.abc import Mapping

from commands_app.commands import Command
from commands_app.mediator import CommandContext, CommandOutcome, Next
from commands_app.result import Error


class AuthorizationMiddleware:
    def __init__(self, policy: Mapping[type[Command], frozenset[str]]) -> None:
        self.policy = dict(policy)

    def __call__(self, command: Command, context: CommandContext, call_next: Next) -> CommandOutcome:
        allowed = self.policy.get(type(command), frozenset())
        if not allowed & context.scopes:
            names = " or ".join(sorted(allowed)) or "no"
            error = Error(
                "FORBIDDEN",
                f"{type(command).__name__} needs the {names} scope.",
                {"required_scopes": sorted(allowed)},
            )
            return CommandOutcome(status_code=403, error=error)
        return call_next(command, context)
