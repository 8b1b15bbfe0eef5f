"""AddProduct: a new product in the catalog, with its opening stock."""

from typing import Any

from commands_app.commands import AddProduct
from commands_app.domain.product import Product
from commands_app.mediator import HandlerCall
from commands_app.result import Error, Ok, Result


def add_product(command: AddProduct, call: HandlerCall) -> Result[dict[str, Any]]:
    with call.uow as uow:
        uow.lock("product", command.sku)
        if uow.products.exists(command.sku):
            return Error("SKU_TAKEN", f"A product with sku {command.sku} exists already.", {"field": "sku"})
        product = Product.add(
            sku=command.sku,
            name=command.name,
            description=command.description,
            price=command.price,
            stock=command.stock,
        )
        uow.products.add(product)
        uow.commit()
    return Ok({"sku": product.sku, "version": product.version})
