"""Input serializers: each turns a JSON body into one command, or names what is wrong.

A command's input serializer also describes its endpoint for the OpenAPI schema (`output`, `summary`, the
request `example` and its `answer`); the route (commands_app/api/urls.py) needs nothing else, and the success
status comes from the command's registration.
"""

from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from commands_app import commands

MAX_QUANTITY = 1_000_000
MAX_STOCK = 1_000_000_000
SKU = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


# Unknown fields are errors, not silently dropped: a typo must not change what a command does.
class Input(serializers.Serializer[dict[str, Any]]):
    # Checked on the data itself: a nested input (an order line) has no initial_data of its own.
    def to_internal_value(self, data: Any) -> dict[str, Any]:
        unknown = set(data) - set(self.fields) if isinstance(data, dict) else set()
        if unknown:
            raise serializers.ValidationError(dict.fromkeys(sorted(unknown), "Unknown field."))
        return super().to_internal_value(data)


def plain_text(max_length: int) -> serializers.RegexField:
    """Text as people write it: no control characters, no markup brackets, and not only spaces."""
    allowed = r"[^\x00-\x1f\x7f-\x9f<>]"
    return serializers.RegexField(
        rf"^{allowed}*[^\s\x00-\x1f\x7f-\x9f<>]{allowed}*$",
        max_length=max_length,
        min_length=1,
        error_messages={"invalid": "Control characters and < > are not allowed, and it cannot be blank."},
    )


@extend_schema_field(
    {
        "type": "string",
        "pattern": r"^[0-9]{1,10}(\.[0-9]{1,2})?$",
        "example": "19.90",
        "description": "A decimal string, at most 10 digits before the point and 2 after.",
    }
)
class Money(serializers.DecimalField):
    def __init__(self) -> None:
        super().__init__(max_digits=12, decimal_places=2, min_value=Decimal("0.00"))


def money() -> Money:
    return Money()


def expected_version() -> serializers.IntegerField:
    return serializers.IntegerField(min_value=0, max_value=2**31 - 1, required=False, allow_null=True)


class CommandInput(Input):
    command: ClassVar[type[commands.Command]]
    output: ClassVar[type[serializers.Serializer[Any]]]
    summary: ClassVar[str]
    example: ClassVar[dict[str, Any]]
    answer: ClassVar[dict[str, Any]]

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
    status = serializers.CharField()


class RegisterCustomerInput(CommandInput):
    command = commands.RegisterCustomer
    output = CustomerVersionOutput
    summary = "Register a customer"
    example: ClassVar = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}
    answer: ClassVar = {"customer_id": CUSTOMER_ID, "version": 1}

    first_name = plain_text(100)
    last_name = plain_text(100)
    email = serializers.EmailField(max_length=254)


class ChangeCustomerEmailInput(CommandInput):
    command = commands.ChangeCustomerEmail
    output = CustomerVersionOutput
    summary = "Change a customer's email"
    example: ClassVar = {"customer_id": CUSTOMER_ID, "email": "ada@lovelace.org", "expected_version": 1}
    answer: ClassVar = {"customer_id": CUSTOMER_ID, "version": 2}

    customer_id = serializers.UUIDField()
    email = serializers.EmailField(max_length=254)
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

    sku = serializers.RegexField(SKU, max_length=64)
    name = plain_text(200)
    description = serializers.CharField(max_length=5000, allow_blank=True)
    price = money()
    stock = serializers.IntegerField(min_value=0, max_value=MAX_STOCK)


class RestockProductInput(CommandInput):
    command = commands.RestockProduct
    output = ProductVersionOutput
    summary = "Restock a product (scope: catalog)"
    example: ClassVar = {"sku": "LAMP-1", "quantity": 10, "expected_version": 1}
    answer: ClassVar = {"sku": "LAMP-1", "version": 2}

    sku = serializers.RegexField(SKU, max_length=64)
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_STOCK)
    expected_version = expected_version()


class ChangeProductPriceInput(CommandInput):
    command = commands.ChangeProductPrice
    output = ProductVersionOutput
    summary = "Change a price (scope: catalog)"
    example: ClassVar = {"sku": "LAMP-1", "price": "17.50"}
    answer: ClassVar = {"sku": "LAMP-1", "version": 3}

    sku = serializers.RegexField(SKU, max_length=64)
    price = money()
    expected_version = expected_version()


class OrderLineInput(Input):
    sku = serializers.RegexField(SKU, max_length=64)
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY)


class PlaceOrderInput(CommandInput):
    command = commands.PlaceOrder
    output = OrderAcceptedOutput
    summary = "Place an order (fulfilment continues in a saga)"
    example: ClassVar = {
        "customer_id": CUSTOMER_ID,
        "lines": [{"sku": "LAMP-1", "quantity": 2}],
        "payment_token": "tok_ok",
    }
    answer: ClassVar = {"order_id": ORDER_ID, "status": "pending"}

    customer_id = serializers.UUIDField()
    lines = serializers.ListField(child=OrderLineInput(), min_length=1, max_length=100)
    payment_token = serializers.CharField(min_length=1, max_length=100)

    def validate_lines(self, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Lines naming the same sku are one line with the quantities added."""
        merged: dict[str, int] = {}
        for line in lines:
            merged[line["sku"]] = merged.get(line["sku"], 0) + line["quantity"]
        if any(quantity > MAX_QUANTITY for quantity in merged.values()):
            raise serializers.ValidationError(f"At most {MAX_QUANTITY} units of one sku per order.")
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

    order_id = serializers.UUIDField()
    reason = plain_text(500)

    def to_command(self, idempotency_key: UUID) -> commands.Command:
        """The client's reason is a note: a cancellation it asks for is for the reason customer_request."""
        return commands.CancelOrder(
            idempotency_key=idempotency_key,
            order_id=self.validated_data["order_id"],
            reason="customer_request",
            note=self.validated_data["reason"],
        )
