"""ReserveInventory (saga step): hold every line's units, or none of them if any line is short.

Locks: the order's first, then its products' in sku order, so concurrent reservations never deadlock and
stock never goes negative.
"""

from typing import Any

from commands_app.commands import ReserveInventory
from commands_app.domain.order import Order
from commands_app.domain.product import Product
from commands_app.events import Shortage
from commands_app.ports import SYSTEM, CommandRegistration, Lock, UnitOfWork
from commands_app.result import Ok, Result


def reserve_inventory(command: ReserveInventory, uow: UnitOfWork) -> Result[dict[str, Any]]:
    orders = uow.repository(Order)
    order = orders.get(command.order_id, after_locks=[Lock.on("order", command.order_id)])
    if order is None:
        return Order.not_found(command.order_id, field="order_id")
    if error := order.ensure_pending():
        return error
    if order.reserved:
        return Ok({"order_id": str(order.order_id), "reserved": True, "shortages": []})
    skus = sorted({line.sku for line in order.lines})
    products = uow.repository(Product)
    held = products.get_many(skus, after_locks=[Lock.on("product", sku) for sku in skus])
    shortages = tuple(
        Shortage(line.sku, line.quantity, product.available if product else 0)
        for line in order.lines
        if (product := held.get(line.sku)) is None or product.available < line.quantity
    )
    if shortages:
        order.reservation_failed(shortages)
        orders.save(order)
        return Ok({"order_id": str(order.order_id), "reserved": False, "shortages": [s.sku for s in shortages]})
    for line in order.lines:
        if error := held[line.sku].reserve(order.order_id, line.quantity):
            return error
    for product in held.values():
        products.save(product)
    order.reserved = True
    orders.save(order)
    return Ok({"order_id": str(order.order_id), "reserved": True, "shortages": []})


REGISTRATION = CommandRegistration(ReserveInventory, reserve_inventory, scopes=SYSTEM)
