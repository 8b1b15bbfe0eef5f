"""The write side's composition root: registers handlers and builds the mediator pipeline.

Pipeline order (outermost first): logging -> tracing -> metrics -> authorization -> idempotency ->
result mapper, which runs the handler and maps its Result on the way back out.
"""

from functools import cache

from django.conf import settings
from django.core.cache import cache as django_cache

from commands_app import commands
from commands_app.handlers.register_customer import register_customer
from commands_app.mediator import Handler, HandlerRegistry, Mediator
from commands_app.middleware.authorization import AuthorizationMiddleware
from commands_app.middleware.idempotency import IdempotencyMiddleware
from commands_app.middleware.idempotency_store import CacheFastPath, FastPath, RedisFastPath
from commands_app.middleware.logging import LoggingMiddleware
from commands_app.middleware.metrics import MetricsMiddleware
from commands_app.middleware.result_mapper import ResultMapper, UnitOfWorkFactory, default_unit_of_work
from commands_app.middleware.tracing import TracingMiddleware

# Command type -> (handler, scope it needs, HTTP status on success).
COMMANDS: dict[type[commands.Command], tuple[Handler, str, int]] = {
    commands.RegisterCustomer: (register_customer, "write", 201),
}


def default_fast_path() -> FastPath:
    if settings.REDIS_URL:
        from django_redis import get_redis_connection

        return RedisFastPath(get_redis_connection("default"))
    return CacheFastPath(django_cache)


def build_mediator(
    *,
    fast_path: FastPath | None = None,
    registry: HandlerRegistry | None = None,
    uow_factory: UnitOfWorkFactory = default_unit_of_work,
) -> Mediator:
    if registry is None:
        registry = HandlerRegistry()
        for command_type, (handler, _, _) in COMMANDS.items():
            registry.register(command_type, handler)
    policy = {command_type: scope for command_type, (_, scope, _) in COMMANDS.items()}
    success_status = {command_type: status for command_type, (_, _, status) in COMMANDS.items()}
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
        innermost=ResultMapper(registry=registry, success_status=success_status, uow_factory=uow_factory),
    )


@cache
def mediator() -> Mediator:
    """The process-wide mediator, built on first use."""
    return build_mediator()
