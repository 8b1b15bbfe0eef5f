"""ConfirmOrder (saga step): with its units held and its payment authorized, an order is confirmed and sold."""

import copy
import uuid

from uuid_utils.compat import uuid7

from commands_app.commands import ConfirmOrder
from commands_app.domain.order import Order
from commands_app.domain.product import Product
from commands_app.handlers.confirm_order import confirm_order
from commands_app.ports import Lock
from commands_app.result import Error, Ok
from tests.fakes import FakeUnitOfWork, Read, assert_nothing_committed, decide
from tests.unit.handlers.given import a_product, an_order, line


def confirm(order_id) -> ConfirmOrder:
    return ConfirmOrder(idempotency_key=uuid.uuid4(), order_id=order_id)


def ready(*lines) -> Order:
    return an_order(*lines, reserved=True, payment_status="authorized", authorization_id="auth_1")


def test_the_held_units_become_sales_and_the_order_is_confirmed():
    order = ready(line("A", 2))
    uow = FakeUnitOfWork.holding(order, a_product("A", stock=5, reserved=2))

    result = decide(confirm_order, confirm(order.order_id), uow)

    assert result == Ok({"order_id": str(order.order_id), "status": "confirmed"})
    product = uow.get(Product, "A")
    assert (product.reserved, product.sold, product.available) == (0, 2, 3)
    assert (uow.get(Order, order.order_id).status, uow.get(Order, order.order_id).reserved) == ("confirmed", False)
    assert uow.event_types() == ["OrderConfirmed"]


def test_a_confirmed_order_is_answered_again_without_a_write():
    order = an_order(status="confirmed", payment_status="authorized")
    uow = FakeUnitOfWork.holding(order)

    result = decide(confirm_order, confirm(order.order_id), uow)

    assert result == Ok({"order_id": str(order.order_id), "status": "confirmed"})
    assert uow.events == [] and uow.journal == [Lock("order", str(order.order_id)), Read("Order", (order.order_id,))]


def test_an_order_not_ready_or_unknown_is_refused_and_nothing_is_committed():
    for order, code in [
        (None, "ORDER_NOT_FOUND"),
        (an_order(payment_status="authorized"), "INVENTORY_NOT_RESERVED"),
        (an_order(reserved=True), "PAYMENT_NOT_AUTHORIZED"),
        (an_order(status="cancelled", reserved=True, payment_status="authorized"), "ORDER_NOT_PENDING"),
    ]:
        uow = FakeUnitOfWork.holding(*([order] if order else []), a_product("LAMP-1", reserved=2))
        before = copy.deepcopy(uow.stored)

        result = decide(confirm_order, confirm(order.order_id if order else uuid7()), uow)

        assert isinstance(result, Error) and result.code == code
        assert_nothing_committed(uow, before)


def test_the_order_is_locked_first_then_its_products_in_sku_order_with_their_reads():
    order = ready(line("B", 1), line("A", 1))
    uow = FakeUnitOfWork.holding(order, a_product("A", reserved=1), a_product("B", reserved=1))

    decide(confirm_order, confirm(order.order_id), uow)

    assert uow.journal == [
        Lock("order", str(order.order_id)),
        Read("Order", (order.order_id,)),
        Lock("product", "A"),
        Lock("product", "B"),
        Read("Product", ("A", "B")),
    ]
