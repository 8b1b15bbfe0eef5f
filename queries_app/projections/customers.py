"""The customer view: names and email from customer events; order count, lifetime value and last order from orders."""

from collections.abc import Iterable
from decimal import Decimal
from typing import cast

from django.utils.dateparse import parse_datetime

from outbox_app.sealing import ERASED
from queries_app.envelopes import (
    CustomerEmailChangedPayload,
    CustomerRegisteredPayload,
    Envelope,
    OrderConfirmedPayload,
    OrderPlacedPayload,
)
from queries_app.models import CustomerReadModel
from queries_app.projection_engine.projection import ApplyContext, Projection, handles
from queries_app.projection_engine.rows import Need


class CustomerProjection(Projection):
    name = "customers"
    follows = ("Customer", "Order")
    owns = ("Customer",)
    models = (CustomerReadModel,)
    # Lifetime value counts confirmed orders only, and the order count every placed one.
    ignores = frozenset(
        {"InventoryReservationFailed", "PaymentAuthorized", "PaymentDeclined", "PaymentVoided", "OrderCancelled"}
    )

    def needs(self, envelope: Envelope) -> Iterable[Need]:
        if envelope["event_type"] in self._handlers:
            yield Need(CustomerReadModel, envelope["payload"]["customer_id"], create=True)

    @handles("CustomerRegistered")
    def registered(self, ctx: ApplyContext, envelope: Envelope) -> None:
        payload = cast(CustomerRegisteredPayload, envelope["payload"])
        customer = ctx.rows.get_or_create(CustomerReadModel, payload["customer_id"])
        customer.first_name = payload["first_name"]
        customer.last_name = payload["last_name"]
        customer.email = payload["email"]
        customer.version = envelope["aggregate_version"]

    @handles("CustomerEmailChanged")
    def email_changed(self, ctx: ApplyContext, envelope: Envelope) -> None:
        payload = cast(CustomerEmailChangedPayload, envelope["payload"])
        customer = ctx.rows.get_or_create(CustomerReadModel, payload["customer_id"])
        customer.email = payload["email"]
        customer.version = envelope["aggregate_version"]

    @handles("CustomerErased")
    def erased(self, ctx: ApplyContext, envelope: Envelope) -> None:
        customer = ctx.rows.get_or_create(CustomerReadModel, envelope["payload"]["customer_id"])
        customer.first_name = customer.last_name = customer.email = ERASED
        customer.version = envelope["aggregate_version"]

    @handles("OrderPlaced")
    def order_placed(self, ctx: ApplyContext, envelope: Envelope) -> None:
        payload = cast(OrderPlacedPayload, envelope["payload"])
        # Orders of a customer may be applied before the registration: the row starts as a placeholder.
        customer = ctx.rows.get_or_create(CustomerReadModel, payload["customer_id"])
        customer.orders_count += 1
        placed_at = parse_datetime(envelope["occurred_at"])
        if customer.last_order_at is None or (placed_at is not None and placed_at > customer.last_order_at):
            customer.last_order_at = placed_at

    @handles("OrderConfirmed")
    def order_confirmed(self, ctx: ApplyContext, envelope: Envelope) -> None:
        # A confirmed order can no longer be cancelled, so lifetime value only grows.
        payload = cast(OrderConfirmedPayload, envelope["payload"])
        customer = ctx.rows.get_or_create(CustomerReadModel, payload["customer_id"])
        customer.lifetime_value = Decimal(customer.lifetime_value) + Decimal(payload["total"])
