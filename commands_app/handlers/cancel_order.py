"""CancelOrder: stop an order before it is confirmed; the saga compensates its reservation and payment."""

from typing import Any

from commands_app.commands import CancelOrder
from commands_app.mediator import HandlerCall
from commands_app.result import Error, Ok, Result


def cancel_order(command: CancelOrder, call: HandlerCall) -> Result[dict[str, Any]]:
    with call.uow as uow:
        uow.lock("order", str(command.order_id))
        order = uow.orders.get(command.order_id)
        if order is None:
            return Error("ORDER_NOT_FOUND", "No such order.", {"field": "order_id"})
        if error := order.cancel(command.reason, command.note):
            return error
        uow.payment_tokens.forget(order.order_id)  # an order that ended needs no payment token
        uow.orders.save(order)
        uow.commit()
    return Ok({"order_id": str(order.order_id), "status": order.status})
