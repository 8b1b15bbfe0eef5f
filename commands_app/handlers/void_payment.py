"""VoidPayment (saga compensation): give the order's authorization back; a no-op when none is held."""

from typing import Any

from commands_app.commands import VoidPayment
from commands_app.domain.order import AUTHORIZED, Order
from commands_app.payments.port import PAYMENT_PROVIDER_UNAVAILABLE, PaymentProvider, PaymentProviderUnavailable
from commands_app.ports import SYSTEM, CommandRegistration, Lock, UnitOfWork
from commands_app.result import Error, Ok, Result


def void_payment(command: VoidPayment, uow: UnitOfWork, *, provider: PaymentProvider) -> Result[dict[str, Any]]:
    orders = uow.repository(Order)
    order = orders.get(command.order_id, after_locks=[Lock.on("order", command.order_id)])
    if order is None:
        return Order.not_found(command.order_id, field="order_id")
    if order.payment_status != AUTHORIZED:
        return Ok({"order_id": str(order.order_id), "voided": False, "authorization_id": order.authorization_id})
    if error := order.void_payment():
        return error
    try:
        provider.void(idempotency_key=str(command.idempotency_key), authorization_id=order.authorization_id)
    except PaymentProviderUnavailable as unavailable:
        return Error(PAYMENT_PROVIDER_UNAVAILABLE, str(unavailable))
    orders.save(order)
    return Ok({"order_id": str(order.order_id), "voided": True, "authorization_id": order.authorization_id})


REGISTRATION = CommandRegistration(VoidPayment, void_payment, scopes=SYSTEM)
