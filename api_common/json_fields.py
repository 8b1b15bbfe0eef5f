"""Fields of JSON request bodies that take only the JSON type their schema states.

DRF's fields coerce: a CharField takes 1000 as "1000", an IntegerField takes "12" and 12.0, a UUIDField
takes an integer, a DecimalField a float. A generated client trusts the schema, and an API that accepts
what its schema forbids breaks that trust (and hides client bugs), so these fields refuse a value of another
JSON type with the error code `invalid_type`, before any conversion. Query parameters are always text and
keep DRF's own fields.
"""

import re
from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

_JSON_NAMES: dict[type, str] = {
    bool: "a boolean",
    int: "a number",
    float: "a number",
    str: "a string",
    list: "an array",
    dict: "an object",
}


def json_type_name(value: Any) -> str:
    """`value` as JSON calls it (bool before int: True is an int in Python, a boolean in JSON)."""
    if value is None:
        return "null"
    return next((name for kind, name in _JSON_NAMES.items() if isinstance(value, kind)), type(value).__name__)


class _TakesOnly:
    """Mixin: refuse a value whose JSON type is not `expected` (a tuple of Python types; bool never counts as int)."""

    expected: tuple[type, ...]
    expected_name: str

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, bool) or not isinstance(data, self.expected):
            raise serializers.ValidationError(
                f"Expected {self.expected_name}, got {json_type_name(data)}.", code="invalid_type"
            )
        return super().to_internal_value(data)  # type: ignore[misc]


class StrictCharField(_TakesOnly, serializers.CharField):
    expected, expected_name = (str,), "a string"


class StrictRegexField(_TakesOnly, serializers.RegexField):
    expected, expected_name = (str,), "a string"


class StrictEmailField(_TakesOnly, serializers.EmailField):
    expected, expected_name = (str,), "a string"


UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_UUID = re.compile(UUID_PATTERN)


def is_canonical_uuid(value: str) -> bool:
    """The 8-4-4-4-12 form JSON Schema's `uuid` format means (Python's UUID() also takes braces, urn: and bare hex)."""
    return bool(_UUID.search(value))


@extend_schema_field({"type": "string", "format": "uuid", "pattern": UUID_PATTERN})
class StrictUUIDField(_TakesOnly, serializers.UUIDField):
    """A UUID in its canonical 8-4-4-4-12 form, as text (DRF's UUIDField also takes integers and other forms)."""

    expected, expected_name = (str,), "a string"

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str) and not is_canonical_uuid(data):
            raise serializers.ValidationError("Must be a UUID in the form 8-4-4-4-12 hex digits.", code="invalid")
        return super().to_internal_value(data)


class StrictIntegerField(_TakesOnly, serializers.IntegerField):
    """An integer: `12.0` and `"12"` are refused (JSON Schema's integer, as OpenAPI 3.0 reads it)."""

    expected, expected_name = (int,), "an integer"


MONEY_PATTERN = r"^[0-9]{1,10}(\.[0-9]{1,2})?$"
MONEY_MAX = Decimal("9999999999.99")


@extend_schema_field(
    {
        "type": "string",
        "pattern": MONEY_PATTERN,
        "example": "19.90",
        "description": "A decimal string: at most 10 digits before the point and 2 after (at most 9999999999.99).",
    }
)
class MoneyField(_TakesOnly, serializers.DecimalField):
    """Money as a decimal string, exactly as the schema's pattern states ("1e3", " 12", "12." and 12.5 are refused)."""

    expected, expected_name = (str,), "a string"
    _pattern = re.compile(MONEY_PATTERN)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_digits=12, decimal_places=2, min_value=Decimal("0.00"), **kwargs)

    def to_internal_value(self, data: Any) -> Decimal:
        # search(), as JSON Schema validators read a pattern (the value is stripped before it is converted).
        if isinstance(data, str) and not self._pattern.search(data):
            raise serializers.ValidationError(
                "A decimal string with at most 10 digits before the point and 2 after, e.g. 19.90.", code="invalid"
            )
        return Decimal(super().to_internal_value(data))
