"""The write side's composition root: finds the command handlers, binds their collaborators, builds the mediator.

Each module of commands_app/handlers/ registers its command (`REGISTRATION`: the handler, the scopes that may
send the command, its HTTP status on success): adding a command adds its module, not a line here. A handler's
keyword-only parameters name the collaborators it needs (`provider`), bound here by name.

Pipeline order (outermost first): logging -> tracing -> metrics -> authorization -> idempotency ->
result mapper, which runs the handler and maps its Result on the way back out.
"""

import functools
import importlib
import inspect
import pkgutil
from collections.abc import Mapping
from functools import cache
from types import ModuleType
from typing import Any

from django.conf import settings
from django.core.cache import cache as django_cache
from django.core.exceptions import ImproperlyConfigured

from commands_app import handlers
from commands_app.aggregates import AGGREGATES
from commands_app.commands import Command
from commands_app.mediator import CommandContext, Handler, HandlerAlreadyRegistered, HandlerRegistry, Mediator
from commands_app.middleware.authorization import AuthorizationMiddleware
from commands_app.middleware.idempotency import IdempotencyMiddleware
from commands_app.middleware.idempotency_store import CacheFastPath, FastPath, RedisFastPath
from commands_app.middleware.logging import LoggingMiddleware
from commands_app.middleware.metrics import MetricsMiddleware
from commands_app.middleware.result_mapper import ResultMapper, UnitOfWorkFactory, metadata_for
from commands_app.middleware.tracing import TracingMiddleware
from commands_app.payments import port as payments
from commands_app.payments.fake import FakePaymentProvider
from commands_app.ports import CommandRegistration
from commands_app.unit_of_work import SqlUnitOfWork
from sqlkit import Transaction


def discover_commands(package: ModuleType = handlers) -> dict[type[Command], CommandRegistration]:
    """Every handler module's REGISTRATION, by command type (a second handler for a command is refused)."""
    found: dict[type[Command], CommandRegistration] = {}
    for module_info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{module_info.name}")
        registration = getattr(module, "REGISTRATION", None)
        if not isinstance(registration, CommandRegistration):
            raise ImproperlyConfigured(f"{module.__name__} has no REGISTRATION (a CommandRegistration)")
        if registration.command in found:
            raise HandlerAlreadyRegistered(f"{registration.command.__name__} has a handler already.")
        found[registration.command] = registration
    return found


COMMANDS: dict[type[Command], CommandRegistration] = discover_commands()
# What the result mapper answers for each error code: the aggregates' tables and the collaborators' own.
ERROR_STATUS: dict[str, int] = {**AGGREGATES.error_status(), **payments.ERROR_STATUS}


def open_unit_of_work(command: Command, context: CommandContext, transaction: Transaction) -> SqlUnitOfWork:
    """The command's unit of work in its owner's transaction, over the registered aggregates."""
    return SqlUnitOfWork(transaction=transaction, aggregates=AGGREGATES, metadata=metadata_for(command, context))


def default_fast_path() -> FastPath:
    if settings.REDIS_URL:
        from django_redis import get_redis_connection

        return RedisFastPath(get_redis_connection("default"))
    return CacheFastPath(django_cache)


def default_payment_provider() -> payments.PaymentProvider:
    """The fake provider is the only one there is (see docs/sagas.md); a real adapter would be chosen here."""
    return FakePaymentProvider(cache=django_cache, timeout_seconds=settings.PAYMENT_PROVIDER_TIMEOUT_SECONDS)


def bind(handler: Handler, collaborators: Mapping[str, Any]) -> Handler:
    """The handler with its keyword-only parameters bound to the collaborators of the same names."""
    wanted = [
        parameter.name
        for parameter in inspect.signature(handler).parameters.values()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    missing = [name for name in wanted if name not in collaborators]
    if missing:
        raise ImproperlyConfigured(f"{handler.__name__} needs {missing}, which the composition root does not have")
    return functools.partial(handler, **{name: collaborators[name] for name in wanted}) if wanted else handler


def build_registry(*, payment_provider: payments.PaymentProvider | None = None) -> HandlerRegistry:
    collaborators = {"provider": payment_provider or default_payment_provider()}
    registry = HandlerRegistry()
    for command_type, registration in COMMANDS.items():
        registry.register(command_type, bind(registration.handler, collaborators))
    return registry


def build_result_mapper(
    *,
    registry: HandlerRegistry | None = None,
    unit_of_work: UnitOfWorkFactory = open_unit_of_work,
    payment_provider: payments.PaymentProvider | None = None,
) -> ResultMapper:
    return ResultMapper(
        registry=registry or build_registry(payment_provider=payment_provider),
        success_status={command_type: r.success_status for command_type, r in COMMANDS.items()},
        error_status=ERROR_STATUS,
        unit_of_work=unit_of_work,
    )


def build_mediator(
    *,
    fast_path: FastPath | None = None,
    registry: HandlerRegistry | None = None,
    unit_of_work: UnitOfWorkFactory = open_unit_of_work,
    payment_provider: payments.PaymentProvider | None = None,
) -> Mediator:
    """The pipeline of the module docstring."""
    policy = {command_type: registration.scopes for command_type, registration in COMMANDS.items()}
    return Mediator(
        middlewares=[
            LoggingMiddleware(),
            TracingMiddleware(),
            MetricsMiddleware(),
            AuthorizationMiddleware(policy),
            IdempotencyMiddleware(
                fast_path=fast_path or default_fast_path(),
                window_seconds=settings.IDEMPOTENCY_WINDOW_SECONDS,
                claim_seconds=settings.IDEMPOTENCY_CLAIM_SECONDS,
            ),
        ],
        innermost=build_result_mapper(registry=registry, unit_of_work=unit_of_work, payment_provider=payment_provider),
    )


@cache
def mediator() -> Mediator:
    """The process-wide mediator, built on first use (commands_app.mediator.process_mediator() returns it)."""
    return build_mediator()
