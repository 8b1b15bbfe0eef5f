"""Plain-JSON values from domain objects and back: UUIDs and decimals as strings, dataclasses as objects."""

import dataclasses
import functools
import types
import typing
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID


def to_json_value(value: Any) -> Any:
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [to_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json_value(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json_value(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


def from_json_value(hint: Any, value: Any) -> Any:
    """The value of type `hint` that to_json_value() turned into `value`: dataclasses (by their fields' type
    hints), tuples and lists of them, decimals, UUIDs, datetimes, enums and the JSON scalars."""
    if value is None:
        return None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        present = [arg for arg in args if arg is not type(None)]
        return from_json_value(present[0], value) if len(present) == 1 else value
    if origin in (tuple, list):
        item = args[0] if args else Any
        return origin(from_json_value(item, v) for v in value)
    if origin is dict:
        return {k: from_json_value(args[1], v) for k, v in value.items()}
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        hints = _field_hints(hint)
        return hint(**{name: from_json_value(field_hint, value[name]) for name, field_hint in hints})
    if hint in (Decimal, UUID, int, float, str, bool):
        return hint(value)
    if hint is datetime:
        return datetime.fromisoformat(value)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(value)
    return value


@functools.cache
def _field_hints(cls: type) -> tuple[tuple[str, Any], ...]:
    """A dataclass's fields with their resolved type hints: resolving them (typing.get_type_hints) costs more than
    reading a value back, and a class's hints never change."""
    hints = typing.get_type_hints(cls)
    return tuple((field.name, hints[field.name]) for field in dataclasses.fields(cls))
