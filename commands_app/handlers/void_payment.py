"""VoidPayment (saga compensation): give the order's authorization back; a no-op when none is held.

With the compensated step's `authorization_key`, whatever the provider authorized with that key is voided as
well, even when the order never recorded it: a worker killed inside AuthorizePayment after the provider
answered rolls the order's side back, not the provider's.
"""

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
        return _void_unrecorded(command, order, provider)
    if error := order.void_payment():
        return error
    try:
        provider.void(idempotency_key=str(command.idempotency_key), authorization_id=order.authorization_id)
    except PaymentProviderUnavailable as unavailable:
        return Error(PAYMENT_PROVIDER_UNAVAILABLE, str(unavailable))
    orders.save(order)
    return Ok({"order_id": str(order.order_id), "voided": True, "authorization_id": order.authorization_id})


def _void_unrecorded(command: VoidPayment, order: Order, provider: PaymentProvider) -> Result[dict[str, Any]]:
    """The order holds no authorization: void the one the provider may hold under the step's key, if asked."""
    voided = None
    if command.authorization_key is not None:
        try:
            voided = provider.void_authorized_with(
                idempotency_key=str(command.idempotency_key), authorization_key=str(command.authorization_key)
            )
        except PaymentProviderUnavailable as unavailable:
            return Error(PAYMENT_PROVIDER_UNAVAILABLE, str(unavailable))
    return Ok(
        {
            "order_id": str(order.order_id),
            "voided": voided is not None,
            "authorization_id": voided or order.authorization_id,
        }
    )


REGISTRATION = CommandRegistration(VoidPayment, void_payment, scopes=SYSTEM)
