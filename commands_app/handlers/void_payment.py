"""VoidPayment (saga compensation): give the order's authorization back; a no-op when none is held."""

from typing import Any

from commands_app.commands import VoidPayment
from commands_app.domain.order import AUTHORIZED
from commands_app.mediator import HandlerCall
from commands_app.payments.port import PaymentProvider, PaymentProviderUnavailable
from commands_app.result import Error, Ok, Result


def void_payment(command: VoidPayment, call: HandlerCall, *, provider: PaymentProvider) -> Result[dict[str, Any]]:
    with call.uow as uow:
        uow.lock("order", str(command.order_id))
        order = uow.orders.get(command.order_id)
        if order is None:
            return Error("ORDER_NOT_FOUND", "No such order.", {"field": "order_id"})
        if order.payment_status != AUTHORIZED:
            return Ok({"order_id": str(order.order_id), "voided": False, "authorization_id": order.authorization_id})
        if error := order.void_payment():
            return error
        try:
            provider.void(idempotency_key=str(command.idempotency_key), authorization_id=order.authorization_id)
        except PaymentProviderUnavailable as unavailable:
            return Error("PAYMENT_PROVIDER_UNAVAILABLE", str(unavailable))
        uow.orders.save(order)
        uow.commit()
    return Ok({"order_id": str(order.order_id), "voided": True, "authorization_id": order.authorization_id})
