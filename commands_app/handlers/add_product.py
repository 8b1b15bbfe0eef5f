"""AddProduct: a new product in the catalog, with its opening stock."""

from typing import Any

from commands_app.commands import AddProduct
from commands_app.domain.product import Product
from commands_app.ports import CATALOG, CommandRegistration, Lock, UnitOfWork
from commands_app.result import Error, Ok, Result


def add_product(command: AddProduct, uow: UnitOfWork) -> Result[dict[str, Any]]:
    products = uow.repository(Product)
    if products.exists(command.sku, after_locks=[Lock.on("product", command.sku)]):
        return Error("SKU_TAKEN", f"A product with sku {command.sku} exists already.", {"field": "sku"})
    product = Product.add(
        sku=command.sku,
        name=command.name,
        description=command.description,
        price=command.price,
        stock=command.stock,
    )
    products.add(product)
    return Ok({"sku": product.sku, "version": product.version})


REGISTRATION = CommandRegistration(AddProduct, add_product, scopes=CATALOG, success_status=201)
