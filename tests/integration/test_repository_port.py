"""The repository port, held to one contract by both its implementations: the SQL unit of work on PostgreSQL and
the in-memory fake the handlers' unit tests use (tests/fakes.py). What the handler tests prove on the fake holds
on the database because the fake behaves as the database does here."""

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import F
from uuid_utils.compat import uuid7

import sqlkit
from commands_app.aggregates import AGGREGATES
from commands_app.domain.customer import Customer
from commands_app.domain.order import Order
from commands_app.domain.product import Product
from commands_app.events import OrderLine
from commands_app.repository import AggregateRegistration, ConcurrencyError
from commands_app.unit_of_work import SqlUnitOfWork
from tests.fakes import FakeUnitOfWork

pytestmark = pytest.mark.django_db


class SqlWorld:
    """Each unit runs in a transaction of its own, committed as the pipeline's owner commits it."""

    def run(self, work: Callable[[Any], Any]) -> Any:
        with sqlkit.Transaction.begin() as transaction:
            uow = SqlUnitOfWork(transaction=transaction, aggregates=AGGREGATES, metadata={})
            answer = work(uow)
            uow.stage_events()
            transaction.flush()
        return answer

    def move_behind_the_lock(self, aggregate_type: type, key: Any) -> None:
        registration: AggregateRegistration[Any] = AGGREGATES.registration(aggregate_type)
        registration.record._default_manager.filter(pk=key).update(version=F("version") + 1)


class FakeWorld:
    """Each unit over the same committed aggregates, as each SQL unit works on the same tables."""

    def __init__(self) -> None:
        self.stored: dict = {}

    def run(self, work: Callable[[Any], Any]) -> Any:
        uow = FakeUnitOfWork(stored=self.stored)
        answer = work(uow)
        uow.stage_events()
        uow.commit()
        return answer

    def move_behind_the_lock(self, aggregate_type: type, key: Any) -> None:
        self.stored[aggregate_type][key].version += 1


@pytest.fixture(params=["sql", "fake"])
def world(request):
    return SqlWorld() if request.param == "sql" else FakeWorld()


def an_order() -> Order:
    lines = (
        OrderLine(sku="A", name="Lamp", quantity=2, unit_price=Decimal("2.50"), line_total=Decimal("5.00")),
        OrderLine(sku="B", name="Bulb", quantity=1, unit_price=Decimal("0.99"), line_total=Decimal("0.99")),
    )
    order = Order.place(order_id=uuid7(), customer_id=uuid7(), lines=lines, payment_reference="pm_test")
    assert isinstance(order, Order)
    return order


def test_an_added_aggregate_reads_back_equal_with_its_version(world):
    order = an_order()
    world.run(lambda uow: uow.repository(Order).add(order))

    found = world.run(lambda uow: uow.repository(Order).get(order.order_id))

    assert found == order and found.version == 1
    assert found.lines[0].unit_price == Decimal("2.50")


def test_missing_keys_read_as_none_and_only_found_ones_come_back_from_get_many(world):
    product = Product.add(sku="A", name="Lamp", description="", price=Decimal("1.00"), stock=1)
    world.run(lambda uow: uow.repository(Product).add(product))

    answers = world.run(
        lambda uow: (
            uow.repository(Product).get("NOPE"),
            set(uow.repository(Product).get_many(["B", "A", "C"])),
            uow.repository(Product).exists("A"),
            uow.repository(Product).exists("B"),
        )
    )

    assert answers == (None, {"A"}, True, False)


def test_exists_where_matches_on_each_field(world):
    customer = Customer.register(customer_id=uuid7(), first_name="Ada", last_name="L", email="ada@example.com")
    world.run(lambda uow: uow.repository(Customer).add(customer))

    found = world.run(
        lambda uow: (
            uow.repository(Customer).exists_where(email="ada@example.com"),
            uow.repository(Customer).exists_where(email="ada@example.com", first_name="Bob"),
            uow.repository(Customer).exists_where(email="bob@example.com"),
        )
    )

    assert found == (True, False, False)


def test_a_saved_aggregate_keeps_its_changes(world):
    product = Product.add(sku="A", name="Lamp", description="", price=Decimal("1.00"), stock=5)
    world.run(lambda uow: uow.repository(Product).add(product))

    def restock(uow):
        loaded = uow.repository(Product).get("A")
        loaded.restock(3)
        uow.repository(Product).save(loaded)

    world.run(restock)

    stored = world.run(lambda uow: uow.repository(Product).get("A"))
    assert (stored.stock, stored.available, stored.version) == (8, 8, 2)


def test_a_save_over_a_row_moved_behind_its_lock_fails_and_keeps_nothing(world):
    product = Product.add(sku="A", name="Lamp", description="", price=Decimal("1.00"), stock=5)
    world.run(lambda uow: uow.repository(Product).add(product))

    def restock_while_it_moves(uow):
        loaded = uow.repository(Product).get("A")
        world.move_behind_the_lock(Product, "A")
        loaded.restock(3)
        uow.repository(Product).save(loaded)

    with pytest.raises(ConcurrencyError):
        world.run(restock_while_it_moves)
    stored = world.run(lambda uow: uow.repository(Product).get("A"))
    assert stored.stock == 5
