"""ReserveInventory (saga step): hold every line's units, or none if any line is short."""

import copy
import uuid

from uuid_utils.compat import uuid7

from commands_app.commands import ReserveInventory
from commands_app.domain.order import Order
from commands_app.domain.product import Product
from commands_app.handlers.reserve_inventory import reserve_inventory
from commands_app.ports import Lock
from commands_app.result import Error, Ok
from tests.fakes import FakeUnitOfWork, Read, assert_nothing_committed, decide
from tests.unit.handlers.given import a_product, an_order, line


def reserve(order_id) -> ReserveInventory:
    return ReserveInventory(idempotency_key=uuid.uuid4(), order_id=order_id)


def test_every_lines_units_are_held_and_the_order_is_reserved():
    order = an_order(line("B", 2), line("A", 3))
    uow = FakeUnitOfWork.holding(order, a_product("A", stock=5), a_product("B", stock=2))

    result = decide(reserve_inventory, reserve(order.order_id), uow)

    assert result == Ok({"order_id": str(order.order_id), "reserved": True, "shortages": []})
    assert uow.get(Order, order.order_id).reserved
    assert (uow.get(Product, "A").available, uow.get(Product, "B").available) == (2, 0)
    assert sorted(uow.event_types()) == ["InventoryReserved", "InventoryReserved"]


def test_a_short_line_holds_nothing_and_records_the_shortage_on_the_order():
    order = an_order(line("A", 1), line("B", 3))
    uow = FakeUnitOfWork.holding(order, a_product("A", stock=5), a_product("B", stock=2))

    result = decide(reserve_inventory, reserve(order.order_id), uow)

    assert result == Ok({"order_id": str(order.order_id), "reserved": False, "shortages": ["B"]})
    assert uow.event_types() == ["InventoryReservationFailed"]
    assert (uow.get(Product, "A").available, uow.get(Product, "B").available) == (5, 2)
    assert not uow.get(Order, order.order_id).reserved


def test_an_order_reserved_already_is_answered_again_without_a_write():
    order = an_order(reserved=True)
    uow = FakeUnitOfWork.holding(order, a_product("LAMP-1"))

    result = decide(reserve_inventory, reserve(order.order_id), uow)

    assert isinstance(result, Ok) and result.value["reserved"] is True
    assert uow.events == []


def test_an_unknown_or_settled_order_is_refused_and_nothing_is_committed():
    for order, code in [(None, "ORDER_NOT_FOUND"), (an_order(status="cancelled"), "ORDER_NOT_PENDING")]:
        uow = FakeUnitOfWork.holding(*([order] if order else []), a_product("LAMP-1"))
        before = copy.deepcopy(uow.stored)

        result = decide(reserve_inventory, reserve(order.order_id if order else uuid7()), uow)

        assert isinstance(result, Error) and result.code == code
        assert_nothing_committed(uow, before)


def test_the_order_is_locked_first_then_its_products_in_sku_order_with_their_reads():
    order = an_order(line("C", 1), line("A", 1), line("B", 1))
    uow = FakeUnitOfWork.holding(order, a_product("A"), a_product("B"), a_product("C"))

    decide(reserve_inventory, reserve(order.order_id), uow)

    assert uow.journal == [
        Lock("order", str(order.order_id)),
        Read("Order", (order.order_id,)),
        Lock("product", "A"),
        Lock("product", "B"),
        Lock("product", "C"),
        Read("Product", ("A", "B", "C")),
    ]
