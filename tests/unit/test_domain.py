"""Aggregates are plain Python: their invariants return errors as values and record versioned events."""

import uuid
from decimal import Decimal

import pytest

from commands_app.domain.customer import Customer
from commands_app.domain.limits import MAX_LINE_QUANTITY, MAX_MONEY, MAX_STOCK
from commands_app.domain.order import Order
from commands_app.domain.product import Product
from commands_app.events import CustomerRegistered, InventoryReserved, OrderLine, ProductAdded
from commands_app.result import Error


def a_product(stock: int = 3) -> Product:
    return Product.add(sku="SKU-1", name="Lamp", description="", price=Decimal("10.00"), stock=stock)


def line(quantity: int = 2, unit_price: str = "10.00") -> OrderLine:
    price = Decimal(unit_price)
    return OrderLine(sku="SKU-1", name="Lamp", quantity=quantity, unit_price=price, line_total=price * quantity)


def an_order(*lines: OrderLine) -> Order:
    order = Order.place(
        order_id=uuid.uuid4(), customer_id=uuid.uuid4(), lines=lines or (line(),), payment_reference="pm_test"
    )
    assert isinstance(order, Order)
    return order


@pytest.mark.parametrize(
    ("lines", "code"),
    [
        pytest.param((line(MAX_LINE_QUANTITY + 1, "0.01"),), "QUANTITY_TOO_LARGE", id="units of one sku"),
        pytest.param((line(36_154, "9999999.99"),), "ORDER_TOTAL_TOO_LARGE", id="the total"),
        pytest.param((line(1, "9999999999.99"), line(1, "0.01")), "ORDER_TOTAL_TOO_LARGE", id="a cent over"),
    ],
)
def test_an_order_beyond_the_bounds_is_an_error_and_records_nothing(lines, code):
    placed = Order.place(order_id=uuid.uuid4(), customer_id=uuid.uuid4(), lines=lines, payment_reference="pm_test")

    assert isinstance(placed, Error) and placed.code == code
    assert placed.details["field"] == "lines"


def test_an_order_at_the_bounds_is_placed():
    order = an_order(line(1, "9999999999.98"), line(1, "0.01"))

    assert order.total == MAX_MONEY


def test_stock_beyond_its_bound_is_an_error_and_changes_nothing():
    product = a_product(stock=MAX_STOCK - 5)

    refused = product.restock(6)
    accepted = product.restock(5)

    assert isinstance(refused, Error) and refused.code == "STOCK_LIMIT_EXCEEDED"
    assert accepted is None and product.stock == MAX_STOCK and product.version == 2


def test_registering_a_customer_records_version_one():
    customer = Customer.register(customer_id=uuid.uuid4(), first_name=" Ada ", last_name="L", email="A@B.C")

    assert customer.version == 1
    assert customer.email == "a@b.c"
    assert [(v, type(e)) for v, e in customer.pending_events] == [(1, CustomerRegistered)]


def test_each_event_advances_the_version_by_one():
    product = a_product()
    product.restock(2)
    product.change_price(Decimal("12.50"))

    assert [v for v, _ in product.pending_events] == [1, 2, 3]
    assert isinstance(product.pending_events[0][1], ProductAdded)


def test_a_reservation_beyond_availability_is_an_error_and_changes_nothing():
    product = a_product(stock=1)

    error = product.reserve(uuid.uuid4(), 2)

    assert error is not None and error.code == "INSUFFICIENT_STOCK"
    assert (product.available, product.version) == (1, 1)


def test_available_is_stock_minus_reserved_minus_sold():
    product = a_product(stock=5)
    order_id = uuid.uuid4()
    assert product.reserve(order_id, 3) is None
    product.sell_reserved(2)
    product.release(order_id, 1)

    assert (product.stock, product.reserved, product.sold, product.available) == (5, 0, 2, 3)
    assert isinstance(product.pending_events[1][1], InventoryReserved)


def test_a_confirmed_order_cannot_be_cancelled():
    order = an_order()
    order.reserved = True
    assert order.authorize_payment("auth-1") is None
    assert order.confirm() is None

    error = order.cancel("customer_request")

    assert error is not None and error.code == "ORDER_ALREADY_CONFIRMED"
    assert order.total == Decimal("20.00")


def test_an_order_cannot_be_confirmed_without_its_reservation():
    error = an_order().confirm()

    assert error is not None and error.code == "INVENTORY_NOT_RESERVED"


def test_an_order_cannot_be_confirmed_without_an_authorized_payment():
    order = an_order()
    order.reserved = True

    error = order.confirm()

    assert error is not None and error.code == "PAYMENT_NOT_AUTHORIZED"
    assert order.status == "pending"


def test_expected_version_mismatch_is_a_version_conflict():
    product = a_product()

    assert product.check_version(1) is None
    conflict = product.check_version(0)
    assert conflict is not None and conflict.code == "VERSION_CONFLICT"
