"""The read side's own typed view of the envelopes and payloads it consumes (it imports no write-side class)."""

from typing import Any, TypedDict


class Envelope(TypedDict):
    event_id: str
    event_type: str
    schema_version: int
    aggregate_type: str
    aggregate_id: str
    aggregate_version: int
    occurred_at: str
    correlation_id: str | None
    causation_id: str | None
    payload: dict[str, Any]


class CustomerRegisteredPayload(TypedDict):
    customer_id: str
    first_name: str
    last_name: str
    email: str
