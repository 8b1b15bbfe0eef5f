"""The order fulfilment saga: a definition (its steps, their commands and timeouts) and the events that drive it.

place_order (done by the customer before the saga starts) -> reserve_inventory (5 min) -> authorize_payment
(10 min) -> confirm_order, the pivot. Compensations in reverse: void the payment (by the authorization's own
idempotency key, so an authorization the order never recorded is voided too), release the inventory, cancel the
order with the reason. Sagas of this type are keyed by the order id.
"""

from typing import Any
from uuid import UUID

from commands_app import commands
from sagas_app import definitions, lifecycle
from sagas_app.domain import FORWARD, Refusal, SagaDefinition, Step, StepInput, Timeout

FULFILMENT = "fulfilment"
PLACE_ORDER, RESERVE_INVENTORY, AUTHORIZE_PAYMENT, CONFIRM_ORDER = (
    "place_order",
    "reserve_inventory",
    "authorize_payment",
    "confirm_order",
)
CONFIRMED, CANCELLED = "confirmed", "cancelled"
INSUFFICIENT_STOCK, PAYMENT_DECLINED, PAYMENT_TIMEOUT, CUSTOMER_REQUEST = (
    "insufficient_stock",
    "payment_declined",
    "payment_timeout",
    "customer_request",
)
CANCELLATION_REASONS = (CUSTOMER_REQUEST, INSUFFICIENT_STOCK, PAYMENT_DECLINED, PAYMENT_TIMEOUT)


def _order(step: StepInput) -> dict[str, Any]:
    return {"idempotency_key": step.idempotency_key, "order_id": UUID(step.correlation_id)}


def _void_payment(step: StepInput) -> commands.VoidPayment:
    # The authorization the forward step made with its key, whether or not the order recorded it (a worker killed
    # between the provider's answer and the commit leaves one only the provider knows).
    return commands.VoidPayment(**_order(step), authorization_key=step.step_keys(AUTHORIZE_PAYMENT, FORWARD))


def _cancel_order(step: StepInput) -> commands.CancelOrder:
    return commands.CancelOrder(**_order(step), reason=step.reason, note=f"fulfilment saga {step.saga_id}")


DEFINITION = SagaDefinition(
    saga_type=FULFILMENT,
    steps=(
        Step(
            PLACE_ORDER,
            compensation=_cancel_order,
            already_compensated=frozenset({"ORDER_ALREADY_CANCELLED"}),
            local=True,
        ),
        Step(
            RESERVE_INVENTORY,
            forward=lambda step: commands.ReserveInventory(**_order(step)),
            compensation=lambda step: commands.ReleaseInventory(**_order(step)),
            # The order's cancellation reasons are the write side's: a reservation that cannot be made in time
            # cancels the order as out of stock.
            timeout=Timeout(300.0, INSUFFICIENT_STOCK, setting="SAGA_RESERVE_TIMEOUT_SECONDS"),
            refusals=(Refusal(INSUFFICIENT_STOCK, flag="reserved"),),
            local=True,
        ),
        Step(
            AUTHORIZE_PAYMENT,
            forward=lambda step: commands.AuthorizePayment(**_order(step)),
            compensation=_void_payment,
            timeout=Timeout(600.0, PAYMENT_TIMEOUT, setting="SAGA_PAYMENT_TIMEOUT_SECONDS"),
            refusals=(Refusal(PAYMENT_DECLINED, flag="authorized"),),
        ),
        Step(CONFIRM_ORDER, forward=lambda step: commands.ConfirmOrder(**_order(step)), local=True),
    ),
    # Only the customer (or an operator on their behalf) cancels a pending order besides this saga.
    refusals=(Refusal(CUSTOMER_REQUEST, error_code="ORDER_NOT_PENDING", details={"status": CANCELLED}),),
    succeeded=CONFIRMED,
    compensated=CANCELLED,
    cancellation_reasons=CANCELLATION_REASONS,
)


def register() -> None:
    """OrderPlaced starts the fulfilment saga (once per order); a customer's OrderCancelled makes it compensate.

    Both are idempotent, so a redelivered event changes nothing. An OrderCancelled that overtakes its
    OrderPlaced finds no saga and is dropped: the saga, once started, finds the order cancelled at its
    first step and compensates with reason customer_request all the same.
    """
    definitions.register(DEFINITION, events={"OrderPlaced": start, "OrderCancelled": cancel})


def start(envelope: dict[str, Any]) -> UUID | None:
    payload = envelope["payload"]
    return lifecycle.start(
        FULFILMENT,
        str(UUID(payload["order_id"])),
        context={"order_id": payload["order_id"], "customer_id": payload["customer_id"], "total": payload["total"]},
        cause=envelope,
    )


def cancel(envelope: dict[str, Any]) -> UUID | None:
    if envelope["payload"]["reason"] != CUSTOMER_REQUEST:
        return None  # the saga's own cancellation
    return lifecycle.request_cancellation(FULFILMENT, envelope["aggregate_id"], CUSTOMER_REQUEST)
