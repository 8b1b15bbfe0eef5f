"""ConfirmOrder (saga step): the held units become sales and the order is confirmed."""

from typing import Any

from commands_app.commands import ConfirmOrder
from commands_app.mediator import HandlerCall
from commands_app.result import Error, Ok, Result


def confirm_order(command: ConfirmOrder, call: HandlerCall) -> Result[dict[str, Any]]:
    with call.uow as uow:
        uow.lock("order", str(command.order_id))
        order = uow.orders.get(command.order_id)
        if order is None:
            return Error("ORDER_NOT_FOUND", "No such order.", {"field": "order_id"})
        if order.status == "confirmed":
            return Ok({"order_id": str(order.order_id), "status": order.status})
        if error := order.confirm():
            return error
        for sku in sorted({line.sku for line in order.lines}):
            uow.lock("product", sku)
        for line in order.lines:
            product = uow.products.get(line.sku)
            assert product is not None
            product.sell_reserved(line.quantity)
            uow.products.save(product)
        order.reserved = False
        uow.orders.save(order)
        uow.commit()
    return Ok({"order_id": str(order.order_id), "status": order.status})
