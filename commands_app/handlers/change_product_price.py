"""ChangeProductPrice: a new price for future orders (placed orders keep theirs)."""

from typing import Any

from commands_app.commands import ChangeProductPrice
from commands_app.domain.product import Product
from commands_app.ports import CATALOG, CommandRegistration, Lock, UnitOfWork
from commands_app.result import Ok, Result


def change_product_price(command: ChangeProductPrice, uow: UnitOfWork) -> Result[dict[str, Any]]:
    products = uow.repository(Product)
    product = products.get(command.sku, after_locks=[Lock.on("product", command.sku)])
    if product is None:
        return Product.not_found(command.sku, field="sku")
    if error := product.check_version(command.expected_version):
        return error
    product.change_price(command.price)
    products.save(product)
    return Ok({"sku": product.sku, "version": product.version})


REGISTRATION = CommandRegistration(ChangeProductPrice, change_product_price, scopes=CATALOG)
