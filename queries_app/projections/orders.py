"""The order view: lines, total, status, payment status and a timeline, with the customer's name and email.

The projection follows Customer events too and keeps its own copy of each customer (read_order_customer):
an order copies it in when placed, and a customer event updates the copy and every order of that customer,
so the result is the same whichever of the two arrives first.
"""

from collections.abc import Iterable
from decimal import Decimal
from typing import cast
from uuid import UUID

from django.utils.dateparse import parse_datetime

from outbox_app.sealing import ERASED
from queries_app.envelopes import (
    CustomerEmailChangedPayload,
    CustomerRegisteredPayload,
    Envelope,
    InventoryReservationFailedPayload,
    OrderCancelledPayload,
    OrderPlacedPayload,
    PaymentPayload,
)
from queries_app.models import OrderCustomer, OrderReadModel
from queries_app.projection_engine.projection import ApplyContext, Projection, handles
from queries_app.projection_engine.rows import Need


def _order(ctx: ApplyContext, envelope: Envelope, detail: str) -> OrderReadModel:
    order = ctx.rows.get(OrderReadModel, envelope["aggregate_id"])
    if order is None:
        raise LookupError(f"{envelope['event_type']} for order {envelope['aggregate_id']}, which was never placed")
    order.version = envelope["aggregate_version"]
    order.timeline = [
        *order.timeline,
        {"at": envelope["occurred_at"], "event": envelope["event_type"], "detail": detail},
    ]
    return order


def _copy_customer(order: OrderReadModel, customer: OrderCustomer) -> None:
    order.customer_first_name = customer.first_name
    order.customer_last_name = customer.last_name
    order.customer_email = customer.email


class OrderProjection(Projection):
    name = "orders"
    follows = ("Customer", "Order")
    owns = ("Order",)
    # The customer copy before the orders: the order in which handlers lock them (see customer_changed).
    models = (OrderCustomer, OrderReadModel)

    def needs(self, envelope: Envelope) -> Iterable[Need]:
        event_type = envelope["event_type"]
        if event_type not in self._handlers:
            return
        if envelope["aggregate_type"] == "Customer":
            customer_id = envelope["payload"]["customer_id"]
            yield Need(OrderCustomer, customer_id, create=True)
            yield Need(OrderReadModel, customer_id, field="customer_id")
        elif event_type == "OrderPlaced":
            yield Need(OrderCustomer, envelope["payload"]["customer_id"], create=True)
        else:
            yield Need(OrderReadModel, envelope["aggregate_id"])

    @handles("CustomerRegistered", "CustomerEmailChanged")
    def customer_changed(self, ctx: ApplyContext, envelope: Envelope) -> None:
        payload = cast(CustomerRegisteredPayload | CustomerEmailChangedPayload, envelope["payload"])
        customer = ctx.rows.get_or_create(OrderCustomer, payload["customer_id"])
        if envelope["event_type"] == "CustomerRegistered":
            registered = cast(CustomerRegisteredPayload, payload)
            customer.first_name = registered["first_name"]
            customer.last_name = registered["last_name"]
        customer.email = payload["email"]
        for order in ctx.rows.filter(OrderReadModel, "customer_id", payload["customer_id"]):
            _copy_customer(order, customer)

    @handles("CustomerErased")
    def customer_erased(self, ctx: ApplyContext, envelope: Envelope) -> None:
        customer = ctx.rows.get_or_create(OrderCustomer, envelope["payload"]["customer_id"])
        customer.first_name = customer.last_name = customer.email = ERASED
        for order in ctx.rows.filter(OrderReadModel, "customer_id", envelope["payload"]["customer_id"]):
            _copy_customer(order, customer)

    @handles("OrderPlaced")
    def placed(self, ctx: ApplyContext, envelope: Envelope) -> None:
        payload = cast(OrderPlacedPayload, envelope["payload"])
        # get_or_create also locks the customer's row, so a concurrent customer event cannot miss this order.
        customer = ctx.rows.get_or_create(OrderCustomer, payload["customer_id"])
        order = ctx.rows.put(OrderReadModel(order_id=UUID(payload["order_id"]), customer_id=customer.customer_id))
        _copy_customer(order, customer)
        order.lines = [
            {
                "sku": line["sku"],
                "name": line["name"],
                "quantity": line["quantity"],
                "unit_price": line["unit_price"],
                "line_total": line["line_total"],
            }
            for line in payload["lines"]
        ]
        order.total = Decimal(payload["total"])
        order.placed_at = parse_datetime(envelope["occurred_at"])
        order.version = envelope["aggregate_version"]
        units = sum(line["quantity"] for line in payload["lines"])
        order.timeline = [
            {
                "at": envelope["occurred_at"],
                "event": "OrderPlaced",
                "detail": f"{len(payload['lines'])} line(s), {units} unit(s), total {payload['total']}",
            }
        ]

    @handles("InventoryReservationFailed")
    def reservation_failed(self, ctx: ApplyContext, envelope: Envelope) -> None:
        payload = cast(InventoryReservationFailedPayload, envelope["payload"])
        skus = ", ".join(str(s["sku"]) for s in payload["shortages"])
        _order(ctx, envelope, f"{payload['reason']}: {skus}")

    @handles("PaymentAuthorized")
    def payment_authorized(self, ctx: ApplyContext, envelope: Envelope) -> None:
        payload = cast(PaymentPayload, envelope["payload"])
        order = _order(ctx, envelope, f"authorized {payload['amount']} ({payload['authorization_id']})")
        order.payment_status = OrderReadModel.PaymentStatus.AUTHORIZED

    @handles("PaymentDeclined")
    def payment_declined(self, ctx: ApplyContext, envelope: Envelope) -> None:
        payload = cast(PaymentPayload, envelope["payload"])
        order = _order(ctx, envelope, f"declined: {payload['reason']}")
        order.payment_status = OrderReadModel.PaymentStatus.DECLINED

    @handles("PaymentVoided")
    def payment_voided(self, ctx: ApplyContext, envelope: Envelope) -> None:
        payload = cast(PaymentPayload, envelope["payload"])
        order = _order(ctx, envelope, f"voided {payload['amount']} ({payload['authorization_id']})")
        order.payment_status = OrderReadModel.PaymentStatus.VOIDED

    @handles("OrderConfirmed")
    def confirmed(self, ctx: ApplyContext, envelope: Envelope) -> None:
        order = _order(ctx, envelope, f"confirmed, total {envelope['payload']['total']}")
        order.status = OrderReadModel.Status.CONFIRMED

    @handles("OrderCancelled")
    def cancelled(self, ctx: ApplyContext, envelope: Envelope) -> None:
        payload = cast(OrderCancelledPayload, envelope["payload"])
        order = _order(ctx, envelope, f"cancelled: {payload['reason']}")
        order.status = OrderReadModel.Status.CANCELLED
        order.cancellation_reason = payload["reason"]
