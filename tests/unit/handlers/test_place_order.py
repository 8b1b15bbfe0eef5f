"""PlaceOrder: a pending order at today's prices, for a customer and products that exist."""

import copy
import uuid
from decimal import Decimal

from commands_app.commands import OrderLineRequest, PlaceOrder
from commands_app.domain.order import Order
from commands_app.handlers.place_order import place_order
from commands_app.ports import Lock
from commands_app.result import Error, Ok
from tests.fakes import FakeUnitOfWork, Read, assert_nothing_committed, decide
from tests.unit.handlers.given import a_customer, a_product


def place(customer_id, *lines: tuple[str, int]) -> PlaceOrder:
    return PlaceOrder(
        idempotency_key=uuid.uuid4(),
        customer_id=customer_id,
        lines=tuple(OrderLineRequest(sku=sku, quantity=quantity) for sku, quantity in lines),
        payment_token="tok_ok",
    )


def test_an_order_is_placed_pending_at_todays_prices():
    customer = a_customer()
    uow = FakeUnitOfWork.holding(customer, a_product("A", price="2.50"), a_product("B", price="10.00"))
    command = place(customer.customer_id, ("A", 2), ("B", 1))

    result = decide(place_order, command, uow)

    assert result == Ok({"order_id": str(command.order_id), "status": "pending"})
    order = uow.get(Order, command.order_id)
    assert [(line.sku, line.quantity, line.line_total) for line in order.lines] == [
        ("A", 2, Decimal("5.00")),
        ("B", 1, Decimal("10.00")),
    ]
    assert order.total == Decimal("15.00")
    assert uow.event_types() == ["OrderPlaced"]
    assert uow.tokens == {command.order_id: "tok_ok"}, "the token kept apart from the order and its event"
    assert order.payment_reference.startswith("pm_")


def test_an_unknown_customer_is_customer_not_found():
    uow = FakeUnitOfWork.holding(a_product("A"))
    before = copy.deepcopy(uow.stored)

    result = decide(place_order, place(uuid.uuid4(), ("A", 1)), uow)

    assert isinstance(result, Error)
    assert (result.code, result.details) == ("CUSTOMER_NOT_FOUND", {"field": "customer_id"})
    assert_nothing_committed(uow, before)


def test_an_unknown_sku_is_product_not_found_naming_its_line():
    customer = a_customer()
    uow = FakeUnitOfWork.holding(customer, a_product("A"))
    before = copy.deepcopy(uow.stored)

    result = decide(place_order, place(customer.customer_id, ("A", 1), ("NOPE", 1)), uow)

    assert isinstance(result, Error)
    assert (result.code, result.details) == ("PRODUCT_NOT_FOUND", {"field": "lines[1].sku"})
    assert_nothing_committed(uow, before)


def test_the_orders_lock_goes_with_the_customer_read_and_prices_are_read_without_locks():
    customer = a_customer()
    uow = FakeUnitOfWork.holding(customer, a_product("A"))
    command = place(customer.customer_id, ("A", 1))

    decide(place_order, command, uow)

    assert uow.journal == [
        Lock("order", str(command.order_id)),
        Read("Customer", (customer.customer_id,)),
        Read("Product", ("A",)),
    ]
