"""ConfirmOrder (saga step): the held units become sales and the order is confirmed.

Locks: the order's first, then its products' in sku order, as every handler that holds several does.
"""

from typing import Any

from commands_app.commands import ConfirmOrder
from commands_app.domain.order import CONFIRMED, Order
from commands_app.domain.product import Product
from commands_app.ports import SYSTEM, CommandRegistration, Lock, UnitOfWork
from commands_app.result import Ok, Result


def confirm_order(command: ConfirmOrder, uow: UnitOfWork) -> Result[dict[str, Any]]:
    orders = uow.repository(Order)
    order = orders.get(command.order_id, after_locks=[Lock.on("order", command.order_id)])
    if order is None:
        return Order.not_found(command.order_id, field="order_id")
    if order.status == CONFIRMED:
        return Ok({"order_id": str(order.order_id), "status": order.status})
    if error := order.confirm():
        return error
    skus = sorted({line.sku for line in order.lines})
    products = uow.repository(Product)
    held = products.get_many(skus, after_locks=[Lock.on("product", sku) for sku in skus])
    for line in order.lines:
        held[line.sku].sell_reserved(line.quantity)
    for product in held.values():
        products.save(product)
    order.reserved = False
    orders.save(order)
    return Ok({"order_id": str(order.order_id), "status": order.status})


REGISTRATION = CommandRegistration(ConfirmOrder, confirm_order, scopes=SYSTEM)
