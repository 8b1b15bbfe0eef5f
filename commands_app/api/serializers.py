"""Input serializers: they turn a JSON body into the fields of one command, or name what is wrong."""

from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api_common.serializers import StrictInput

MAX_QUANTITY = 1_000_000
MAX_STOCK = 1_000_000_000
SKU = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


# Unknown fields are errors, not silently dropped: a typo must not change what a command does.
Input = StrictInput


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


class RegisterCustomerInput(Input):
    first_name = plain_text(100)
    last_name = plain_text(100)
    email = serializers.EmailField(max_length=254)


class ChangeCustomerEmailInput(Input):
    customer_id = serializers.UUIDField()
    email = serializers.EmailField(max_length=254)
    expected_version = expected_version()


class AddProductInput(Input):
    sku = serializers.RegexField(SKU, max_length=64)
    name = plain_text(200)
    description = serializers.CharField(max_length=5000, allow_blank=True)
    price = money()
    stock = serializers.IntegerField(min_value=0, max_value=MAX_STOCK)


class RestockProductInput(Input):
    sku = serializers.RegexField(SKU, max_length=64)
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_STOCK)
    expected_version = expected_version()


class ChangeProductPriceInput(Input):
    sku = serializers.RegexField(SKU, max_length=64)
    price = money()
    expected_version = expected_version()


class OrderLineInput(Input):
    sku = serializers.RegexField(SKU, max_length=64)
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY)


class PlaceOrderInput(Input):
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


class CancelOrderInput(Input):
    order_id = serializers.UUIDField()
    reason = plain_text(500)


class CustomerVersionOutput(serializers.Serializer[dict[str, Any]]):
    customer_id = serializers.UUIDField()
    version = serializers.IntegerField()


class ProductVersionOutput(serializers.Serializer[dict[str, Any]]):
    sku = serializers.CharField()
    version = serializers.IntegerField()


class OrderAcceptedOutput(serializers.Serializer[dict[str, Any]]):
    order_id = serializers.UUIDField()
    status = serializers.CharField()
