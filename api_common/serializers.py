"""Serializer pieces both APIs share: strict JSON bodies and strict query strings."""

from typing import Any

from rest_framework import serializers


# Unknown fields are errors, not silently dropped: a typo must not change what a request does.
class StrictInput(serializers.Serializer[dict[str, Any]]):
    # Checked on the data itself: a nested input (an order line) has no initial_data of its own.
    def to_internal_value(self, data: Any) -> dict[str, Any]:
        unknown = set(data) - set(self.fields) if isinstance(data, dict) else set()
        if unknown:
            raise serializers.ValidationError(dict.fromkeys(sorted(unknown), "Unknown field."))
        return super().to_internal_value(data)


class QueryIntegerField(serializers.IntegerField):
    """An integer in a query string: digits only, as the schema's integer says ("10.0", " 10" and "1e1" are refused;
    DRF's IntegerField takes them)."""

    def to_internal_value(self, data: Any) -> int:
        if not (isinstance(data, str) and data.isascii() and data.isdigit()):
            self.fail("invalid")
        return int(super().to_internal_value(data))


class QueryInput(serializers.Serializer[dict[str, Any]]):
    """Query parameters as the schema states them: each at most once (but a list), and empty only where text may be.

    DRF reads a query string as an HTML form: the last of repeated values wins, and an empty value of an optional
    field counts as absent. Here both are refused, naming the parameter.
    """

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        problems: dict[str, str] = {}
        for name, field in self.fields.items():
            values = data.getlist(name) if hasattr(data, "getlist") else [data[name]] if name in data else []
            if len(values) > 1 and not isinstance(field, serializers.ListField):
                problems[name] = "Give this parameter once."
            elif "" in values and not getattr(field, "allow_blank", False):
                problems[name] = "This parameter may not be empty."
        if problems:
            raise serializers.ValidationError(problems)
        return super().to_internal_value(data)
