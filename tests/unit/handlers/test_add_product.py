"""AddProduct: a new product with its opening stock; a sku is taken once."""

import copy
import uuid
from decimal import Decimal

from commands_app.commands import AddProduct
from commands_app.domain.product import Product
from commands_app.handlers.add_product import add_product
from commands_app.ports import Lock
from commands_app.result import Error, Ok
from tests.fakes import FakeUnitOfWork, Read, assert_nothing_committed, decide
from tests.unit.handlers.given import a_product


def add(sku: str = "LAMP-1") -> AddProduct:
    return AddProduct(
        idempotency_key=uuid.uuid4(), sku=sku, name=" Desk lamp ", description="", price=Decimal("19.90"), stock=25
    )


def test_a_new_sku_adds_the_product_with_all_its_stock_available():
    uow = FakeUnitOfWork()

    result = decide(add_product, add(), uow)

    assert result == Ok({"sku": "LAMP-1", "version": 1})
    product = uow.get(Product, "LAMP-1")
    assert (product.name, product.stock, product.available) == ("Desk lamp", 25, 25)
    assert uow.event_types() == ["ProductAdded"]


def test_a_taken_sku_is_sku_taken_and_nothing_is_committed():
    uow = FakeUnitOfWork.holding(a_product("LAMP-1"))
    before = copy.deepcopy(uow.stored)

    result = decide(add_product, add("LAMP-1"), uow)

    assert isinstance(result, Error)
    assert (result.code, result.details) == ("SKU_TAKEN", {"field": "sku"})
    assert_nothing_committed(uow, before)


def test_the_skus_lock_is_taken_with_the_existence_read():
    uow = FakeUnitOfWork()

    decide(add_product, add("LAMP-1"), uow)

    assert uow.journal == [Lock("product", "LAMP-1"), Read("Product", ("LAMP-1",))]
