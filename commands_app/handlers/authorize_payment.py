"""AuthorizePayment (saga step): hold the order's total with the payment provider.

The provider is called while the order's lock is held, so a cancellation cannot slip in between the
provider's answer and the order recording it (which would leave an authorization that no order knows of).
The command's idempotency key goes to the provider too: a retry gets the same authorization, never a second.
The order's payment token is read from where PlaceOrder kept it and deleted once the authorization is decided;
an order whose token is gone (it can only have been deleted) is declined, and the saga cancels it.
"""

from typing import Any

from commands_app.commands import AuthorizePayment
from commands_app.domain.order import AUTHORIZED, Order
from commands_app.mediator import HandlerCall
from commands_app.payments.port import Declined, PaymentProvider, PaymentProviderUnavailable
from commands_app.result import Error, Ok, Result

TOKEN_GONE = "payment_token_unavailable"


def authorize_payment(
    command: AuthorizePayment, call: HandlerCall, *, provider: PaymentProvider
) -> Result[dict[str, Any]]:
    with call.uow as uow:
        uow.lock("order", str(command.order_id))
        order = uow.orders.get(command.order_id)
        if order is None:
            return Error("ORDER_NOT_FOUND", "No such order.", {"field": "order_id"})
        if order.payment_status == AUTHORIZED:
            return Ok(_answer(order, reason=""))
        if error := order.ensure_pending():
            return error
        token = uow.payment_tokens.get(order.order_id)
        try:
            answer = (
                provider.authorize(
                    idempotency_key=str(command.idempotency_key),
                    order_id=order.order_id,
                    amount=order.total,
                    token=token,
                )
                if token is not None
                else Declined(TOKEN_GONE)
            )
        except PaymentProviderUnavailable as unavailable:
            return Error("PAYMENT_PROVIDER_UNAVAILABLE", str(unavailable))
        if isinstance(answer, Declined):
            order.decline_payment(answer.reason)
        else:
            order.authorize_payment(answer.authorization_id)
        uow.payment_tokens.forget(order.order_id)
        uow.orders.save(order)
        uow.commit()
    return Ok(_answer(order, reason=answer.reason if isinstance(answer, Declined) else ""))


def _answer(order: Order, *, reason: str) -> dict[str, Any]:
    return {
        "order_id": str(order.order_id),
        "authorized": order.payment_status == AUTHORIZED,
        "authorization_id": order.authorization_id,
        "reason": reason,
    }
