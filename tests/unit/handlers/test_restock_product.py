"""RestockProduct: more units on hand; optimistic concurrency on the product's version."""

import copy
import uuid

from commands_app.commands import RestockProduct
from commands_app.domain.product import Product
from commands_app.handlers.restock_product import restock_product
from commands_app.ports import Lock
from commands_app.result import Error, Ok
from tests.fakes import FakeUnitOfWork, Read, assert_nothing_committed, decide
from tests.unit.handlers.given import a_product


def restock(sku: str, quantity: int, expected_version: int | None = None) -> RestockProduct:
    return RestockProduct(idempotency_key=uuid.uuid4(), sku=sku, quantity=quantity, expected_version=expected_version)


def test_restocking_adds_units_on_hand_and_available():
    uow = FakeUnitOfWork.holding(a_product("LAMP-1", stock=10, reserved=4))

    result = decide(restock_product, restock("LAMP-1", 5, expected_version=1), uow)

    assert result == Ok({"sku": "LAMP-1", "version": 2})
    product = uow.get(Product, "LAMP-1")
    assert (product.stock, product.available) == (15, 11)
    assert uow.event_types() == ["ProductRestocked"]


def test_an_unknown_sku_is_product_not_found():
    uow = FakeUnitOfWork()

    result = decide(restock_product, restock("NOPE", 5), uow)

    assert isinstance(result, Error)
    assert (result.code, result.details) == ("PRODUCT_NOT_FOUND", {"field": "sku"})
    assert_nothing_committed(uow, {})


def test_a_stale_expected_version_is_version_conflict_and_nothing_is_committed():
    uow = FakeUnitOfWork.holding(a_product("LAMP-1"))
    before = copy.deepcopy(uow.stored)

    result = decide(restock_product, restock("LAMP-1", 5, expected_version=7), uow)

    assert isinstance(result, Error) and result.code == "VERSION_CONFLICT"
    assert_nothing_committed(uow, before)


def test_the_products_lock_is_taken_with_its_read():
    uow = FakeUnitOfWork.holding(a_product("LAMP-1"))

    decide(restock_product, restock("LAMP-1", 5), uow)

    assert uow.journal == [Lock("product", "LAMP-1"), Read("Product", ("LAMP-1",))]
