"""ReleaseInventory (saga compensation): give an order's held units back; a no-op when none are held."""

from typing import Any

from commands_app.commands import ReleaseInventory
from commands_app.mediator import HandlerCall
from commands_app.result import Error, Ok, Result


def release_inventory(command: ReleaseInventory, call: HandlerCall) -> Result[dict[str, Any]]:
    with call.uow as uow:
        uow.lock("order", str(command.order_id))
        order = uow.orders.get(command.order_id)
        if order is None:
            return Error("ORDER_NOT_FOUND", "No such order.", {"field": "order_id"})
        if not order.reserved:
            return Ok({"order_id": str(order.order_id), "released": False})
        if order.status == "confirmed":
            return Error("ORDER_ALREADY_CONFIRMED", "A confirmed order's units are sold, not held.")
        for sku in sorted({line.sku for line in order.lines}):
            uow.lock("product", sku)
        for line in order.lines:
            product = uow.products.get(line.sku)
            assert product is not None
            product.release(order.order_id, line.quantity)
            uow.products.save(product)
        order.reserved = False
        uow.orders.save(order)
        uow.commit()
    return Ok({"order_id": str(order.order_id), "released": True})
