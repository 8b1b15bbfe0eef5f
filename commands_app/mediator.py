"""The mediator: sends a command through its middlewares to the one handler registered for its type.

A middleware is `(command, context, call_next) -> CommandOutcome`; the chain runs outermost first. With tracing on
(observability/tracing.py), a command runs in a span of its own and each middleware in a span inside it.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from commands_app.commands import Command
from commands_app.result import Error, Result
from commands_app.unit_of_work import UnitOfWork, WrittenVersion
from observability import tracing


@dataclass(frozen=True)
class CommandContext:
    """Who sends the command and in answer to what: the API client, its scopes, the trace ids."""

    client_id: str
    scopes: frozenset[str]
    correlation_id: str
    causation_id: str | None = None
    keeps_business_errors: bool = False
    """Stripe's rule for an API client's key: the first response is the answer, a business error (a 4xx from a
    handler that ran) included. A saga step's key (False) keeps successes only, so that a step that failed
    can run again under its deterministic key (docs/idempotency.md)."""


@dataclass(frozen=True)
class CommandOutcome:
    """A handler's Result mapped for the caller: a status code and a JSON body, or an Error."""

    status_code: int
    body: dict[str, Any] = field(default_factory=dict)
    error: Error | None = None
    headers: dict[str, str] = field(default_factory=dict)
    written: tuple[WrittenVersion, ...] = ()
    replayed: bool = False
    correlation_id: str | None = None
    """On a replay, the correlation id of the request that was answered first (its problem document names it)."""

    @property
    def ok(self) -> bool:
        return self.error is None


Next = Callable[[Command, CommandContext], CommandOutcome]


class Middleware(Protocol):
    def __call__(self, command: Command, context: CommandContext, call_next: Next) -> CommandOutcome: ...


@dataclass(frozen=True)
class HandlerCall:
    """What a handler receives besides its command."""

    uow: UnitOfWork
    context: CommandContext


Handler = Callable[[Any, HandlerCall], Result[Any]]


class HandlerAlreadyRegistered(Exception):
    pass


class NoHandler(Exception):
    pass


class HandlerRegistry:
    def __init__(self) -> None:
        self._handlers: dict[type[Command], Handler] = {}

    def register(self, command_type: type[Command], handler: Handler) -> None:
        if command_type in self._handlers:
            raise HandlerAlreadyRegistered(f"{command_type.__name__} has a handler already.")
        self._handlers[command_type] = handler

    def handler_for(self, command: Command) -> Handler:
        try:
            return self._handlers[type(command)]
        except KeyError:
            raise NoHandler(f"No handler for {type(command).__name__}.") from None

    def command_types(self) -> list[type[Command]]:
        return list(self._handlers)


class Mediator:
    def __init__(self, *, middlewares: Sequence[Middleware], innermost: Next) -> None:
        self.middlewares = tuple(middlewares)
        self._traced = tracing.enabled()  # decided once: with tracing off, the chain has no span to skip
        self._chain = innermost
        for middleware in reversed(self.middlewares):
            self._chain = _link(middleware, self._chain, traced=self._traced)

    def send(self, command: Command, context: CommandContext) -> CommandOutcome:
        if not self._traced:
            return self._chain(command, context)
        with tracing.span(
            f"command {type(command).__name__}",
            **{
                "command.id": command.command_id,
                "client.id": context.client_id,
                "correlation.id": context.correlation_id,
            },
        ):
            outcome = self._chain(command, context)
            tracing.annotate(**{"command.status_code": outcome.status_code, "command.replayed": outcome.replayed})
            if outcome.error is not None:
                tracing.fail(outcome.error.code)
            return outcome


def _link(middleware: Middleware, call_next: Next, *, traced: bool = False) -> Next:
    def step(command: Command, context: CommandContext) -> CommandOutcome:
        return middleware(command, context, call_next)

    if not traced:
        return step
    name = f"middleware {type(middleware).__name__}"

    def traced_step(command: Command, context: CommandContext) -> CommandOutcome:
        with tracing.span(name):
            return step(command, context)

    return traced_step
