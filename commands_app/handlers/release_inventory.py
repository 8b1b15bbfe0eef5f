"""ReleaseInventory (saga compensation): give an order's held units back; a no-op when none are held.

Locks: the order's first, then its products' in sku order.
"""

from typing import Any

from commands_app.commands import ReleaseInventory
from commands_app.domain.order import CONFIRMED, Order
from commands_app.domain.product import Product
from commands_app.ports import SYSTEM, CommandRegistration, Lock, UnitOfWork
from commands_app.result import Error, Ok, Result


def release_inventory(command: ReleaseInventory, uow: UnitOfWork) -> Result[dict[str, Any]]:
    orders = uow.repository(Order)
    order = orders.get(command.order_id, after_locks=[Lock.on("order", command.order_id)])
    if order is None:
        return Order.not_found(command.order_id, field="order_id")
    if not order.reserved:
        return Ok({"order_id": str(order.order_id), "released": False})
    if order.status == CONFIRMED:
        return Error("ORDER_ALREADY_CONFIRMED", "A confirmed order's units are sold, not held.")
    skus = sorted({line.sku for line in order.lines})
    products = uow.repository(Product)
    held = products.get_many(skus, after_locks=[Lock.on("product", sku) for sku in skus])
    for line in order.lines:
        held[line.sku].release(order.order_id, line.quantity)
    for product in held.values():
        products.save(product)
    order.reserved = False
    orders.save(order)
    return Ok({"order_id": str(order.order_id), "released": True})


REGISTRATION = CommandRegistration(ReleaseInventory, release_inventory, scopes=SYSTEM)
