"""Input serializers: they turn a JSON body into the fields of one command, or name what is wrong."""

from decimal import Decimal
from typing import Any

from rest_framework import serializers

MAX_QUANTITY = 1_000_000
MAX_STOCK = 1_000_000_000
SKU = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class Input(serializers.Serializer[dict[str, Any]]):
    """Unknown fields are errors, not silently dropped: a typo must not change what a command does."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = set(self.initial_data) - set(self.fields) if isinstance(self.initial_data, dict) else set()
        if unknown:
            raise serializers.ValidationError(dict.fromkeys(sorted(unknown), "Unknown field."))
        return attrs


class PlainText(serializers.CharField):
    """A name as people write it: no control characters and no markup brackets."""

    default_error_messages = {"markup": "Control characters and < > are not allowed here."}

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if any(ord(c) < 32 or c in "<>\x7f" for c in value):
            self.fail("markup")
        return value


def money() -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0.01"))


def expected_version() -> serializers.IntegerField:
    return serializers.IntegerField(min_value=0, max_value=2**31 - 1, required=False, allow_null=True)


class RegisterCustomerInput(Input):
    first_name = PlainText(max_length=100)
    last_name = PlainText(max_length=100)
    email = serializers.EmailField(max_length=254)


class ChangeCustomerEmailInput(Input):
    customer_id = serializers.UUIDField()
    email = serializers.EmailField(max_length=254)
    expected_version = expected_version()


class AddProductInput(Input):
    sku = serializers.RegexField(SKU, max_length=64)
    name = PlainText(max_length=200)
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


class OrderLineInput(serializers.Serializer[dict[str, Any]]):
    sku = serializers.RegexField(SKU, max_length=64)
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY)


class PlaceOrderInput(Input):
    customer_id = serializers.UUIDField()
    lines = OrderLineInput(many=True, min_length=1, max_length=100)  # type: ignore[call-arg]
    payment_token = serializers.CharField(max_length=100)

    def validate_lines(self, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        skus = [line["sku"] for line in lines]
        if len(set(skus)) != len(skus):
            raise serializers.ValidationError("Each sku may appear on one line only.")
        return lines


class CancelOrderInput(Input):
    order_id = serializers.UUIDField()
    reason = serializers.CharField(max_length=500)


class CustomerVersionOutput(serializers.Serializer[dict[str, Any]]):
    customer_id = serializers.UUIDField()
    version = serializers.IntegerField()


class ProductVersionOutput(serializers.Serializer[dict[str, Any]]):
    sku = serializers.CharField()
    version = serializers.IntegerField()


class OrderAcceptedOutput(serializers.Serializer[dict[str, Any]]):
    order_id = serializers.UUIDField()
    status = serializers.CharField()
