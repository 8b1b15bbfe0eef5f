"""Serializer pieces both APIs share."""

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


class StrictCharField(serializers.CharField):
    """Text that must arrive as a JSON string: a number or a boolean is refused, not turned into text."""

    default_error_messages = {"invalid": "Not a string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A whole number that must arrive as a JSON integer: strings, floats and booleans are refused."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class QueryInput(serializers.Serializer[dict[str, Any]]):
    """Query parameters: one given empty (`?status=`) is refused, where DRF would read it as absent and answer as if
    there were no filter. Fields that allow blank text keep it."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if hasattr(data, "getlist"):
            empty = [
                name
                for name, field in self.fields.items()
                if "" in data.getlist(name) and not getattr(field, "allow_blank", False)
            ]
            if empty:
                raise serializers.ValidationError(dict.fromkeys(empty, "This parameter may not be empty."))
        return super().to_internal_value(data)
