"""OpenAPI links of the command endpoints: from a command's answer to the queries that read it, and what follows."""

from typing import Any

from api_common.consistency import HEADER as CONSISTENCY_HEADER


def read_link(operation_id: str, description: str, **parameters: str) -> dict[str, Any]:
    """A link to a query, carrying the command's consistency token so that the query reads this write."""
    return {
        "operationId": operation_id,
        "description": description,
        "parameters": {**parameters, f"header.{CONSISTENCY_HEADER}": f"$response.header.{CONSISTENCY_HEADER}"},
    }


def command_link(operation_id: str, description: str, **body: str) -> dict[str, Any]:
    """A link to another command, with the body fields this command's result gives it."""
    return {"operationId": operation_id, "description": description, "requestBody": body}


CUSTOMER_LINKS = {
    "GetCustomer": read_link(
        "customers_retrieve", "The customer, as the read model has it.", customer_id="$response.body#/customer_id"
    ),
    "ListOrdersOfCustomer": read_link(
        "orders_list", "The customer's orders.", customer_id="$response.body#/customer_id"
    ),
}
PRODUCT_LINKS = {
    "GetProduct": read_link("products_retrieve", "The product in the catalog.", sku="$response.body#/sku"),
}
ORDER_LINKS = {
    "GetOrder": read_link(
        "orders_retrieve", "The order with its status and timeline.", order_id="$response.body#/order_id"
    ),
}
