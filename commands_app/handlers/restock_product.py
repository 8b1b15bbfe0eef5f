"""RestockProduct: more units of a product on hand."""

from typing import Any

from commands_app.commands import RestockProduct
from commands_app.mediator import HandlerCall
from commands_app.result import Error, Ok, Result


def restock_product(command: RestockProduct, call: HandlerCall) -> Result[dict[str, Any]]:
    with call.uow as uow:
        uow.lock("product", command.sku)
        product = uow.products.get(command.sku)
        if product is None:
            return Error("PRODUCT_NOT_FOUND", f"No product with sku {command.sku}.", {"field": "sku"})
        if error := product.check_version(command.expected_version):
            return error
        if error := product.restock(command.quantity):
            return error
        uow.products.save(product)
        uow.commit()
    return Ok({"sku": product.sku, "version": product.version})
