"""ReserveInventory (saga step): hold every line's units, or none of them if any line is short.

Products are locked in sku order, so concurrent reservations never deadlock and stock never goes negative.
"""

from typing import Any

from commands_app.commands import ReserveInventory
from commands_app.events import Shortage
from commands_app.mediator import HandlerCall
from commands_app.result import Error, Ok, Result


def reserve_inventory(command: ReserveInventory, call: HandlerCall) -> Result[dict[str, Any]]:
    with call.uow as uow:
        uow.lock("order", str(command.order_id))
        order = uow.orders.get(command.order_id)
        if order is None:
            return Error("ORDER_NOT_FOUND", "No such order.", {"field": "order_id"})
        if error := order.ensure_pending():
            return error
        if order.reserved:
            return Ok({"order_id": str(order.order_id), "reserved": True, "shortages": []})
        for sku in sorted({line.sku for line in order.lines}):
            uow.lock("product", sku)
        products = {line.sku: uow.products.get(line.sku) for line in order.lines}
        shortages = tuple(
            Shortage(line.sku, line.quantity, product.available if product else 0)
            for line in order.lines
            if (product := products[line.sku]) is None or product.available < line.quantity
        )
        if shortages:
            order.reservation_failed(shortages)
            uow.orders.save(order)
            uow.commit()
            return Ok({"order_id": str(order.order_id), "reserved": False, "shortages": [s.sku for s in shortages]})
        for line in order.lines:
            product = products[line.sku]
            assert product is not None
            if error := product.reserve(order.order_id, line.quantity):
                return error
        for product in products.values():
            assert product is not None
            uow.products.save(product)
        order.reserved = True
        uow.orders.save(order)
        uow.commit()
    return Ok({"order_id": str(order.order_id), "reserved": True, "shortages": []})
