"""ReleaseInventory (saga compensation): give an order's held units back; a no-op when none are held."""

import copy
import uuid

from uuid_utils.compat import uuid7

from commands_app.commands import ReleaseInventory
from commands_app.domain.order import Order
from commands_app.domain.product import Product
from commands_app.handlers.release_inventory import release_inventory
from commands_app.ports import Lock
from commands_app.result import Error, Ok
from tests.fakes import FakeUnitOfWork, Read, assert_nothing_committed, decide
from tests.unit.handlers.given import a_product, an_order, line


def release(order_id) -> ReleaseInventory:
    return ReleaseInventory(idempotency_key=uuid.uuid4(), order_id=order_id)


def test_held_units_go_back_to_available():
    order = an_order(line("A", 2), line("B", 1), reserved=True)
    uow = FakeUnitOfWork.holding(order, a_product("A", stock=5, reserved=2), a_product("B", stock=1, reserved=1))

    result = decide(release_inventory, release(order.order_id), uow)

    assert result == Ok({"order_id": str(order.order_id), "released": True})
    assert not uow.get(Order, order.order_id).reserved
    assert (uow.get(Product, "A").available, uow.get(Product, "B").available) == (5, 1)
    assert uow.event_types() == ["InventoryReleased", "InventoryReleased"]


def test_an_order_holding_nothing_is_a_no_op():
    order = an_order(reserved=False)
    uow = FakeUnitOfWork.holding(order)

    result = decide(release_inventory, release(order.order_id), uow)

    assert result == Ok({"order_id": str(order.order_id), "released": False})
    assert uow.events == []


def test_an_unknown_or_confirmed_order_is_refused_and_nothing_is_committed():
    for order, code in [
        (None, "ORDER_NOT_FOUND"),
        (an_order(status="confirmed", reserved=True), "ORDER_ALREADY_CONFIRMED"),
    ]:
        uow = FakeUnitOfWork.holding(*([order] if order else []), a_product("LAMP-1", reserved=2))
        before = copy.deepcopy(uow.stored)

        result = decide(release_inventory, release(order.order_id if order else uuid7()), uow)

        assert isinstance(result, Error) and result.code == code
        assert_nothing_committed(uow, before)


def test_the_order_is_locked_first_then_its_products_in_sku_order_with_their_reads():
    order = an_order(line("B", 1), line("A", 1), reserved=True)
    uow = FakeUnitOfWork.holding(order, a_product("A", reserved=1), a_product("B", reserved=1))

    decide(release_inventory, release(order.order_id), uow)

    assert uow.journal == [
        Lock("order", str(order.order_id)),
        Read("Order", (order.order_id,)),
        Lock("product", "A"),
        Lock("product", "B"),
        Read("Product", ("A", "B")),
    ]
