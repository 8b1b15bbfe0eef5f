"""PlaceOrder: a pending order at today's prices; the fulfilment saga takes it from its OrderPlaced event.

The payment token is kept apart from the order (UnitOfWork.payment_tokens), in the same transaction; the order
and its event name the payment by a reference that is no secret.
"""

from typing import Any

from uuid_utils.compat import uuid7

from commands_app.commands import PlaceOrder
from commands_app.domain.customer import Customer
from commands_app.domain.order import Order
from commands_app.domain.product import Product
from commands_app.events import OrderLine
from commands_app.ports import WRITE, CommandRegistration, Lock, UnitOfWork
from commands_app.result import Error, Ok, Result


def place_order(command: PlaceOrder, uow: UnitOfWork) -> Result[dict[str, Any]]:
    customers = uow.repository(Customer)
    if not customers.exists(command.customer_id, after_locks=[Lock.on("order", command.order_id)]):
        return Customer.not_found(command.customer_id, field="customer_id")
    # Today's prices, read without locking: a price changed meanwhile applies to the next order.
    found = uow.repository(Product).get_many(line.sku for line in command.lines)
    lines = []
    for index, requested in enumerate(command.lines):
        product = found.get(requested.sku)
        if product is None:
            return Product.not_found(requested.sku, field=f"lines[{index}].sku")
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
    uow.repository(Order).add(order)
    uow.payment_tokens.keep(order.order_id, command.payment_token)
    return Ok({"order_id": str(order.order_id), "status": order.status})


REGISTRATION = CommandRegistration(PlaceOrder, place_order, scopes=WRITE, success_status=202)
