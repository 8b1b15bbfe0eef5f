"""The write side's composition root: registers handlers and builds the mediator pipeline.

Pipeline order (outermost first): logging -> tracing -> metrics -> authorization -> idempotency ->
result mapper, which runs the handler and maps its Result on the way back out.
"""

from collections.abc import Callable
from functools import cache, partial
from typing import Any

from django.conf import settings
from django.core.cache import cache as django_cache

from commands_app import commands
from commands_app.handlers.add_product import add_product
from commands_app.handlers.authorize_payment import authorize_payment
from commands_app.handlers.cancel_order import cancel_order
from commands_app.handlers.change_customer_email import change_customer_email
from commands_app.handlers.change_product_price import change_product_price
from commands_app.handlers.confirm_order import confirm_order
from commands_app.handlers.place_order import place_order
from commands_app.handlers.register_customer import register_customer
from commands_app.handlers.release_inventory import release_inventory
from commands_app.handlers.reserve_inventory import reserve_inventory
from commands_app.handlers.restock_product import restock_product
from commands_app.handlers.void_payment import void_payment
from commands_app.mediator import HandlerRegistry, Mediator
from commands_app.middleware.authorization import AuthorizationMiddleware
from commands_app.middleware.idempotency import IdempotencyMiddleware
from commands_app.middleware.idempotency_store import CacheFastPath, FastPath, RedisFastPath
from commands_app.middleware.logging import LoggingMiddleware
from commands_app.middleware.metrics import MetricsMiddleware
from commands_app.middleware.result_mapper import ResultMapper, UnitOfWorkFactory, default_unit_of_work
from commands_app.middleware.tracing import TracingMiddleware
from commands_app.payments.fake import FakePaymentProvider
from commands_app.payments.port import PaymentProvider
from commands_app.result import Result

WRITE, CATALOG, SYSTEM = frozenset({"write"}), frozenset({"catalog"}), frozenset({"system"})

# Command type -> (handler, scopes any of which may send it, HTTP status on success). Saga steps are
# sent with the "system" scope, which no API client can hold. A handler that needs a collaborator besides
# its unit of work takes it as a keyword argument, bound in build_mediator.
COMMANDS: dict[type[commands.Command], tuple[Callable[..., Result[Any]], frozenset[str], int]] = {
    commands.RegisterCustomer: (register_customer, WRITE, 201),
    commands.ChangeCustomerEmail: (change_customer_email, WRITE, 200),
    commands.AddProduct: (add_product, CATALOG, 201),
    commands.RestockProduct: (restock_product, CATALOG, 200),
    commands.ChangeProductPrice: (change_product_price, CATALOG, 200),
    commands.PlaceOrder: (place_order, WRITE, 202),
    commands.CancelOrder: (cancel_order, WRITE | SYSTEM, 202),
    commands.ReserveInventory: (reserve_inventory, SYSTEM, 200),
    commands.ReleaseInventory: (release_inventory, SYSTEM, 200),
    commands.ConfirmOrder: (confirm_order, SYSTEM, 200),
    commands.AuthorizePayment: (authorize_payment, SYSTEM, 200),
    commands.VoidPayment: (void_payment, SYSTEM, 200),
}
# Handlers that call the payment provider; build_mediator binds it to them.
NEEDS_PAYMENT_PROVIDER = {authorize_payment, void_payment}


def default_fast_path() -> FastPath:
    if settings.REDIS_URL:
        from django_redis import get_redis_connection

        return RedisFastPath(get_redis_connection("default"))
    return CacheFastPath(django_cache)


def default_payment_provider() -> PaymentProvider:
    """The fake provider is the only one there is (see docs/sagas.md); a real adapter would be chosen here."""
    return FakePaymentProvider(cache=django_cache, timeout_seconds=settings.PAYMENT_PROVIDER_TIMEOUT_SECONDS)


def build_mediator(
    *,
    fast_path: FastPath | None = None,
    registry: HandlerRegistry | None = None,
    uow_factory: UnitOfWorkFactory = default_unit_of_work,
    payment_provider: PaymentProvider | None = None,
    bare: bool = False,
) -> Mediator:
    """The pipeline of the module docstring; `bare` keeps only the result mapper (COMMAND_PIPELINE, benchmarks)."""
    if registry is None:
        provider = payment_provider or default_payment_provider()
        registry = HandlerRegistry()
        for command_type, (handler, _, _) in COMMANDS.items():
            if handler in NEEDS_PAYMENT_PROVIDER:
                handler = partial(handler, provider=provider)
            registry.register(command_type, handler)
    policy = {command_type: scope for command_type, (_, scope, _) in COMMANDS.items()}
    success_status = {command_type: status for command_type, (_, _, status) in COMMANDS.items()}
    innermost = ResultMapper(registry=registry, success_status=success_status, uow_factory=uow_factory)
    if bare:
        return Mediator(middlewares=[], innermost=innermost)
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
        innermost=innermost,
    )


@cache
def mediator() -> Mediator:
    """The process-wide mediator, built on first use; COMMAND_PIPELINE=bare (benchmarks only) drops the middlewares."""
    return build_mediator(bare=settings.COMMAND_PIPELINE == "bare")
