"""CancelOrder: stop an order that is not confirmed yet, for a known reason."""

import copy
import uuid

from uuid_utils.compat import uuid7

from commands_app.commands import CancelOrder
from commands_app.domain.order import Order
from commands_app.handlers.cancel_order import cancel_order
from commands_app.ports import Lock
from commands_app.result import Error, Ok
from tests.fakes import FakeUnitOfWork, Read, assert_nothing_committed, decide
from tests.unit.handlers.given import an_order


def cancel(order_id, reason: str = "customer_request") -> CancelOrder:
    return CancelOrder(idempotency_key=uuid.uuid4(), order_id=order_id, reason=reason, note="wrong colour")


def test_a_pending_order_is_cancelled_with_its_reason():
    order = an_order()
    uow = FakeUnitOfWork.holding(order)
    uow.tokens[order.order_id] = "tok_ok"

    result = decide(cancel_order, cancel(order.order_id), uow)

    assert result == Ok({"order_id": str(order.order_id), "status": "cancelled"})
    assert uow.tokens == {}, "an order that ended needs no payment token"
    stored = uow.get(Order, order.order_id)
    assert (stored.status, stored.cancellation_reason) == ("cancelled", "customer_request")
    (event,) = uow.events
    assert (type(event).__name__, event.note) == ("OrderCancelled", "wrong colour")


def test_an_unknown_order_is_order_not_found():
    uow = FakeUnitOfWork()

    result = decide(cancel_order, cancel(uuid7()), uow)

    assert isinstance(result, Error)
    assert (result.code, result.details) == ("ORDER_NOT_FOUND", {"field": "order_id"})
    assert_nothing_committed(uow, {})


def test_a_confirmed_or_cancelled_order_or_an_unknown_reason_is_refused_and_nothing_is_committed():
    for order, reason, code in [
        (an_order(status="confirmed"), "customer_request", "ORDER_ALREADY_CONFIRMED"),
        (an_order(status="cancelled"), "customer_request", "ORDER_ALREADY_CANCELLED"),
        (an_order(), "bored", "INVALID_REASON"),
    ]:
        uow = FakeUnitOfWork.holding(order)
        before = copy.deepcopy(uow.stored)

        result = decide(cancel_order, cancel(order.order_id, reason), uow)

        assert isinstance(result, Error) and result.code == code
        assert_nothing_committed(uow, before)


def test_the_orders_lock_is_taken_with_its_read():
    order = an_order()
    uow = FakeUnitOfWork.holding(order)

    decide(cancel_order, cancel(order.order_id), uow)

    assert uow.journal == [Lock("order", str(order.order_id)), Read("Order", (order.order_id,))]
