"""RestockProduct: more units of a product on hand."""

from typing import Any

from commands_app.commands import RestockProduct
from commands_app.domain.product import Product
from commands_app.ports import CATALOG, CommandRegistration, Lock, UnitOfWork
from commands_app.result import Ok, Result


def restock_product(command: RestockProduct, uow: UnitOfWork) -> Result[dict[str, Any]]:
    products = uow.repository(Product)
    product = products.get(command.sku, after_locks=[Lock.on("product", command.sku)])
    if product is None:
        return Product.not_found(command.sku, field="sku")
    if error := product.check_version(command.expected_version):
        return error
    if error := product.restock(command.quantity):
        return error
    products.save(product)
    return Ok({"sku": product.sku, "version": product.version})


REGISTRATION = CommandRegistration(RestockProduct, restock_product, scopes=CATALOG)
