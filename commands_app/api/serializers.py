"""Input serializers: they turn a JSON body into the fields of one command, or name what is wrong."""

from typing import Any

from rest_framework import serializers

from api_common.json_fields import (
    MoneyField,
    StrictEmailField,
    StrictIntegerField,
    StrictRegexField,
    StrictUUIDField,
)
from api_common.serializers import StrictInput
from commands_app.domain.limits import MAX_LINE_QUANTITY, MAX_ORDER_LINES, MAX_STOCK

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


class RegisterCustomerInput(Input):
    first_name = plain_text(100)
    last_name = plain_text(100)
    email = email_field()


class ChangeCustomerEmailInput(Input):
    customer_id = StrictUUIDField()
    email = email_field()
    expected_version = expected_version()


class AddProductInput(Input):
    sku = sku_field()
    name = plain_text(200)
    # Any text but NUL (which PostgreSQL cannot store): the pattern says so in the schema.
    description = StrictRegexField(r"^[^\x00]*$", max_length=5000, allow_blank=True)
    price = MoneyField()
    stock = StrictIntegerField(min_value=0, max_value=MAX_STOCK)


class RestockProductInput(Input):
    sku = sku_field()
    quantity = StrictIntegerField(min_value=1, max_value=MAX_STOCK)
    expected_version = expected_version()


class ChangeProductPriceInput(Input):
    sku = sku_field()
    price = MoneyField()
    expected_version = expected_version()


class OrderLineInput(Input):
    sku = sku_field()
    quantity = StrictIntegerField(min_value=1, max_value=MAX_LINE_QUANTITY)


class PlaceOrderInput(Input):
    customer_id = StrictUUIDField()
    lines = serializers.ListField(child=OrderLineInput(), min_length=1, max_length=MAX_ORDER_LINES)
    payment_token = StrictRegexField(PAYMENT_TOKEN, max_length=100)

    def validate_lines(self, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Lines naming the same sku are one line with the quantities added (the domain bounds the sum: 422)."""
        merged: dict[str, int] = {}
        for line in lines:
            merged[line["sku"]] = merged.get(line["sku"], 0) + line["quantity"]
        return [{"sku": sku, "quantity": quantity} for sku, quantity in merged.items()]


class CancelOrderInput(Input):
    order_id = StrictUUIDField()
    reason = plain_text(500)


class CustomerVersionOutput(serializers.Serializer[dict[str, Any]]):
    customer_id = serializers.UUIDField()
    version = serializers.IntegerField()


class ProductVersionOutput(serializers.Serializer[dict[str, Any]]):
    sku = serializers.CharField()
    version = serializers.IntegerField()


class OrderAcceptedOutput(serializers.Serializer[dict[str, Any]]):
    order_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=["pending", "cancelled"], help_text="The order's status now.")
