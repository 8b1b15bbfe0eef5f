"""JSON Schemas of the events' payloads, read from their dataclasses, and their declaration in the log's catalog.

A payload is the event serialized by serialization.to_json_value: UUIDs and decimals become strings, tuples
arrays, nested dataclasses objects. The schema says exactly that, so it cannot drift from the events.
"""

import dataclasses
import typing
from decimal import Decimal
from typing import Any
from uuid import UUID

from commands_app.events import CATALOG, UPCASTERS, DomainEvent
from outbox_app import catalog, upcasting

MONEY_PATTERN = r"^-?[0-9]+\.[0-9]{2}$"


def payload_schema(event_class: type[DomainEvent]) -> dict[str, Any]:
    return _object_schema(event_class)


def _object_schema(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.init]
    return {
        "type": "object",
        "properties": {f.name: _schema(hints[f.name]) for f in fields},
        "required": [f.name for f in fields],
        "additionalProperties": False,
    }


def _schema(hint: Any) -> dict[str, Any]:
    if hint is UUID:
        return {"type": "string", "format": "uuid"}
    if hint is Decimal:
        return {"type": "string", "pattern": MONEY_PATTERN, "description": "A decimal string with two places."}
    if hint is str:
        return {"type": "string"}
    if hint is int:
        return {"type": "integer"}
    if typing.get_origin(hint) is tuple:
        item, *rest = typing.get_args(hint)
        if rest != [Ellipsis]:
            raise TypeError(f"Only variable-length tuples (tuple[X, ...]) are published as arrays, not {hint}.")
        return {"type": "array", "items": _schema(item)}
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _object_schema(hint)
    raise TypeError(f"No JSON Schema for {hint!r}: extend commands_app/event_schemas.py.")


def declare_events() -> None:
    """Declare every event type in the log's catalog (outbox_app.catalog), with its aggregate and payload schema,
    and the upcasters of their older versions in the log's registry (outbox_app.upcasting)."""
    for upcast in UPCASTERS:
        upcasting.register(upcasting.Upcaster(upcast.event_type, upcast.from_version, upcast.to_type, upcast.change))
    for aggregate_type, event_classes in CATALOG.items():
        for event_class in event_classes:
            catalog.declare(
                catalog.EventType(
                    name=event_class.__name__,
                    aggregate_type=aggregate_type,
                    schema_version=event_class.schema_version,
                    payload_schema=payload_schema(event_class),
                    description=(event_class.__doc__ or "").strip(),
                )
            )
