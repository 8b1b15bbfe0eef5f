"""Authorization: each command type names the scope it needs; a missing policy denies (fail closed)."""

from collections.abc import Mapping

from commands_app.commands import Command
from commands_app.mediator import CommandContext, CommandOutcome, Next
from commands_app.result import Error


class AuthorizationMiddleware:
    def __init__(self, policy: Mapping[type[Command], str]) -> None:
        self.policy = dict(policy)

    def __call__(self, command: Command, context: CommandContext, call_next: Next) -> CommandOutcome:
        required = self.policy.get(type(command))
        if required is None or required not in context.scopes:
            error = Error(
                "FORBIDDEN",
                f"{type(command).__name__} needs the {required!r} scope." if required else "Command not allowed.",
                {"required_scope": required},
            )
            return CommandOutcome(status_code=403, error=error)
        return call_next(command, context)
