"""Input serializers: each turns a JSON body into one command, or names what is wrong.

A command's input serializer also describes its endpoint for the OpenAPI schema (`output`, `summary`, the
request `example` and its `answer`, `links` and an `operation_description`); the route (commands_app/api/urls.py) needs
nothing else, and the success status comes from the command's registration.
"""

from typing import Any, ClassVar
from uuid import UUID

from rest_framework import serializers

from api_common.json_fields import (
    MoneyField,
    StrictEmailField,
    StrictIntegerField,
    StrictRegexField,
    StrictUUIDField,
)
from api_common.serializers import StrictInput
from commands_app import commands
from commands_app.api.links import CUSTOMER_LINKS, ORDER_LINKS, PRODUCT_LINKS, command_link
from commands_app.domain.limits import MAX_LINE_QUANTITY, MAX_MONEY, MAX_ORDER_LINES, MAX_STOCK

SKU = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
# A payment provider's token (tok_...): letters, digits, _ and -, so it can never carry markup or control bytes.
PAYMENT_TOKEN = r"^[A-Za-z0-9_-]{1,100}$"


# Unknown fields are errors, not silently dropped: a typo must not change what a command does.
Input = StrictInput


def plain_text(max_length: int) -> StrictRegexField:
    """Text as people write it: no control characters, no markup brackets, and not only spaces."""
    allowed = r"[^\x00-\x1f\x7f-\x9f<>]"
    return StrictRegexField(
        rf"^{allowed}*[^\s\x00-\x1f\x7f-\x9f<>]{allowed}*$",
        max_length=max_length,
        min_length=1,
        error_messages={"invalid": "Control characters and < > are not allowed, and it cannot be blank."},
    )


def sku_field() -> StrictRegexField:
    return StrictRegexField(SKU, max_length=64)


def email_field() -> StrictEmailField:
    return StrictEmailField(max_length=254)


def expected_version() -> StrictIntegerField:
    return StrictIntegerField(min_value=0, max_value=2**31 - 1, required=False, allow_null=True)


class CommandInput(Input):
    command: ClassVar[type[commands.Command]]
    output: ClassVar[type[serializers.Serializer[Any]]]
    summary: ClassVar[str]
    # The operation's description in the schema (a field of the input may be named `description`)
    operation_description: ClassVar[str] = ""
    example: ClassVar[dict[str, Any]]
    answer: ClassVar[dict[str, Any]]
    links: ClassVar[dict[str, dict[str, Any]]]

    def to_command(self, idempotency_key: UUID) -> commands.Command:
        """The command of the validated body."""
        return self.command(idempotency_key=idempotency_key, **self.validated_data)


CUSTOMER_ID = "01a21810-7325-7691-b3c9-f11ffa325cc4"
ORDER_ID = "01a21811-02aa-7c41-9d0b-5b8c3e7f6a10"


class CustomerVersionOutput(serializers.Serializer[dict[str, Any]]):
    customer_id = serializers.UUIDField()
    version = serializers.IntegerField()


class ProductVersionOutput(serializers.Serializer[dict[str, Any]]):
    sku = serializers.CharField()
    version = serializers.IntegerField()


class OrderAcceptedOutput(serializers.Serializer[dict[str, Any]]):
    order_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=["pending", "cancelled"], help_text="The order's status now.")


class RegisterCustomerInput(CommandInput):
    command = commands.RegisterCustomer
    output = CustomerVersionOutput
    summary = "Register a customer"
    example: ClassVar = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}
    answer: ClassVar = {"customer_id": CUSTOMER_ID, "version": 1}
    links: ClassVar = {
        **CUSTOMER_LINKS,
        "ChangeEmail": command_link(
            "commands_change_customer_email_create",
            "Change this customer's email.",
            customer_id="$response.body#/customer_id",
        ),
        "PlaceOrder": command_link(
            "commands_place_order_create",
            "Place an order for this customer.",
            customer_id="$response.body#/customer_id",
        ),
    }

    first_name = plain_text(100)
    last_name = plain_text(100)
    email = email_field()


class ChangeCustomerEmailInput(CommandInput):
    command = commands.ChangeCustomerEmail
    output = CustomerVersionOutput
    summary = "Change a customer's email"
    example: ClassVar = {"customer_id": CUSTOMER_ID, "email": "ada@lovelace.org", "expected_version": 1}
    answer: ClassVar = {"customer_id": CUSTOMER_ID, "version": 2}
    links: ClassVar = CUSTOMER_LINKS

    customer_id = StrictUUIDField()
    email = email_field()
    expected_version = expected_version()


class AddProductInput(CommandInput):
    command = commands.AddProduct
    output = ProductVersionOutput
    summary = "Add a product (scope: catalog)"
    example: ClassVar = {
        "sku": "LAMP-1",
        "name": "Desk lamp",
        "description": "Warm light.",
        "price": "19.90",
        "stock": 25,
    }
    answer: ClassVar = {"sku": "LAMP-1", "version": 1}
    links: ClassVar = {
        **PRODUCT_LINKS,
        "Restock": command_link("commands_restock_product_create", "Restock this product.", sku="$response.body#/sku"),
        "ChangePrice": command_link(
            "commands_change_product_price_create", "Change this product's price.", sku="$response.body#/sku"
        ),
    }

    sku = sku_field()
    name = plain_text(200)
    # Any text but NUL (which PostgreSQL cannot store): the pattern says so in the schema.
    description = StrictRegexField(r"^[^\x00]*$", max_length=5000, allow_blank=True)
    price = MoneyField()
    stock = StrictIntegerField(min_value=0, max_value=MAX_STOCK)


class RestockProductInput(CommandInput):
    command = commands.RestockProduct
    output = ProductVersionOutput
    summary = "Restock a product (scope: catalog)"
    operation_description = (
        f"A product takes in at most {MAX_STOCK} units over its life, opening stock included "
        "(422 STOCK_LIMIT_EXCEEDED)."
    )
    example: ClassVar = {"sku": "LAMP-1", "quantity": 10, "expected_version": 1}
    answer: ClassVar = {"sku": "LAMP-1", "version": 2}
    links: ClassVar = PRODUCT_LINKS

    sku = sku_field()
    quantity = StrictIntegerField(min_value=1, max_value=MAX_STOCK)
    expected_version = expected_version()


class ChangeProductPriceInput(CommandInput):
    command = commands.ChangeProductPrice
    output = ProductVersionOutput
    summary = "Change a price (scope: catalog)"
    example: ClassVar = {"sku": "LAMP-1", "price": "17.50"}
    answer: ClassVar = {"sku": "LAMP-1", "version": 3}
    links: ClassVar = PRODUCT_LINKS

    sku = sku_field()
    price = MoneyField()
    expected_version = expected_version()


class OrderLineInput(Input):
    sku = sku_field()
    quantity = StrictIntegerField(min_value=1, max_value=MAX_LINE_QUANTITY)


class PlaceOrderInput(CommandInput):
    command = commands.PlaceOrder
    output = OrderAcceptedOutput
    summary = "Place an order (fulfilment continues in a saga)"
    operation_description = (
        "Lines naming one sku count as one line. The customer and every sku must exist (404 CUSTOMER_NOT_FOUND, "
        f"PRODUCT_NOT_FOUND); business rules (422): at most {MAX_LINE_QUANTITY} units of one sku "
        f"(QUANTITY_TOO_LARGE), and the total at today's prices at most {MAX_MONEY} (ORDER_TOTAL_TOO_LARGE)."
    )
    example: ClassVar = {
        "customer_id": CUSTOMER_ID,
        "lines": [{"sku": "LAMP-1", "quantity": 2}],
        "payment_token": "tok_ok",
    }
    answer: ClassVar = {"order_id": ORDER_ID, "status": "pending"}
    links: ClassVar = {
        **ORDER_LINKS,
        "Cancel": command_link(
            "commands_cancel_order_create", "Cancel this order.", order_id="$response.body#/order_id"
        ),
    }

    customer_id = StrictUUIDField()
    lines = serializers.ListField(child=OrderLineInput(), min_length=1, max_length=MAX_ORDER_LINES)
    payment_token = StrictRegexField(PAYMENT_TOKEN, max_length=100)

    def validate_lines(self, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Lines naming the same sku are one line with the quantities added (the domain bounds the sum: 422)."""
        merged: dict[str, int] = {}
        for line in lines:
            merged[line["sku"]] = merged.get(line["sku"], 0) + line["quantity"]
        return [{"sku": sku, "quantity": quantity} for sku, quantity in merged.items()]

    def to_command(self, idempotency_key: UUID) -> commands.Command:
        data = dict(self.validated_data)
        lines = tuple(
            commands.OrderLineRequest(sku=line["sku"], quantity=line["quantity"]) for line in data.pop("lines")
        )
        return commands.PlaceOrder(idempotency_key=idempotency_key, lines=lines, **data)


class CancelOrderInput(CommandInput):
    command = commands.CancelOrder
    output = OrderAcceptedOutput
    summary = "Cancel an order not yet confirmed"
    example: ClassVar = {"order_id": ORDER_ID, "reason": "Ordered the wrong colour."}
    answer: ClassVar = {"order_id": ORDER_ID, "status": "cancelled"}
    links: ClassVar = ORDER_LINKS

    order_id = StrictUUIDField()
    reason = plain_text(500)

    def to_command(self, idempotency_key: UUID) -> commands.Command:
        """The client's reason is a note: a cancellation it asks for is for the reason customer_request."""
        return commands.CancelOrder(
            idempotency_key=idempotency_key,
            order_id=self.validated_data["order_id"],
            reason="customer_request",
            note=self.validated_data["reason"],
        )
