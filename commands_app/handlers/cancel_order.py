"""CancelOrder: stop an order before it is confirmed; the saga compensates its reservation and payment."""

from typing import Any

from commands_app.commands import CancelOrder
from commands_app.domain.order import Order
from commands_app.ports import SYSTEM, WRITE, CommandRegistration, Lock, UnitOfWork
from commands_app.result import Ok, Result


def cancel_order(command: CancelOrder, uow: UnitOfWork) -> Result[dict[str, Any]]:
    orders = uow.repository(Order)
    order = orders.get(command.order_id, after_locks=[Lock.on("order", command.order_id)])
    if order is None:
        return Order.not_found(command.order_id, field="order_id")
    if error := order.cancel(command.reason, command.note):
        return error
    uow.payment_tokens.forget(order.order_id)  # an order that ended needs no payment token
    orders.save(order)
    return Ok({"order_id": str(order.order_id), "status": order.status})


REGISTRATION = CommandRegistration(CancelOrder, cancel_order, scopes=WRITE | SYSTEM, success_status=202)
