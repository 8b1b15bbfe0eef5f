"""ChangeProductPrice: a new price for future orders; optimistic concurrency on the product's version."""

import copy
import uuid
from decimal import Decimal

from commands_app.commands import ChangeProductPrice
from commands_app.domain.product import Product
from commands_app.handlers.change_product_price import change_product_price
from commands_app.ports import Lock
from commands_app.result import Error, Ok
from tests.fakes import FakeUnitOfWork, Read, assert_nothing_committed, decide
from tests.unit.handlers.given import a_product


def reprice(sku: str, price: str, expected_version: int | None = None) -> ChangeProductPrice:
    return ChangeProductPrice(
        idempotency_key=uuid.uuid4(), sku=sku, price=Decimal(price), expected_version=expected_version
    )


def test_the_price_changes_and_the_event_carries_the_previous_one():
    uow = FakeUnitOfWork.holding(a_product("LAMP-1", price="19.90"))

    result = decide(change_product_price, reprice("LAMP-1", "17.50"), uow)

    assert result == Ok({"sku": "LAMP-1", "version": 2})
    assert uow.get(Product, "LAMP-1").price == Decimal("17.50")
    (event,) = uow.events
    assert (type(event).__name__, event.previous_price) == ("ProductPriceChanged", Decimal("19.90"))


def test_an_unknown_sku_is_product_not_found():
    uow = FakeUnitOfWork()

    result = decide(change_product_price, reprice("NOPE", "1.00"), uow)

    assert isinstance(result, Error)
    assert (result.code, result.details) == ("PRODUCT_NOT_FOUND", {"field": "sku"})
    assert_nothing_committed(uow, {})


def test_a_stale_expected_version_is_version_conflict_and_nothing_is_committed():
    uow = FakeUnitOfWork.holding(a_product("LAMP-1"))
    before = copy.deepcopy(uow.stored)

    result = decide(change_product_price, reprice("LAMP-1", "1.00", expected_version=0), uow)

    assert isinstance(result, Error) and result.code == "VERSION_CONFLICT"
    assert_nothing_committed(uow, before)


def test_the_products_lock_is_taken_with_its_read():
    uow = FakeUnitOfWork.holding(a_product("LAMP-1"))

    decide(change_product_price, reprice("LAMP-1", "1.00"), uow)

    assert uow.journal == [Lock("product", "LAMP-1"), Read("Product", ("LAMP-1",))]
