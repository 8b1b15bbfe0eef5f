"""PlaceOrder: a pending order at today's prices; the fulfilment saga takes it from its OrderPlaced event.

The payment token is kept apart from the order (PaymentTokens), in the same transaction; the order and its
event name the payment by a reference that is no secret.
"""

from typing import Any

from uuid_utils.compat import uuid7

from commands_app.commands import PlaceOrder
from commands_app.domain.order import Order
from commands_app.events import OrderLine
from commands_app.mediator import HandlerCall
from commands_app.result import Error, Ok, Result


def place_order(command: PlaceOrder, call: HandlerCall) -> Result[dict[str, Any]]:
    with call.uow as uow:
        uow.lock("order", str(command.order_id))
        if not uow.customers.exists(command.customer_id):
            return Error("UNKNOWN_CUSTOMER", "No such customer.", {"field": "customer_id"})
        lines = []
        for index, requested in enumerate(command.lines):
            product = uow.products.get(requested.sku)
            if product is None:
                return Error(
                    "UNKNOWN_PRODUCT", f"No product with sku {requested.sku}.", {"field": f"lines[{index}].sku"}
                )
            lines.append(
                OrderLine(
                    sku=product.sku,
                    name=product.name,
                    quantity=requested.quantity,
                    unit_price=product.price,
                    line_total=product.price * requested.quantity,
                )
            )
        order = Order.place(
            order_id=command.order_id,
            customer_id=command.customer_id,
            lines=tuple(lines),
            payment_reference=f"pm_{uuid7().hex}",
        )
        if isinstance(order, Error):
            return order
        uow.orders.add(order)
        uow.payment_tokens.keep(order.order_id, command.payment_token)
        uow.commit()
    return Ok({"order_id": str(order.order_id), "status": order.status})
