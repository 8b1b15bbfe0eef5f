"""The read side's own typed view of the envelopes and payloads it consumes (it imports no write-side class)."""

from typing import Any, NotRequired, TypedDict


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
    traceparent: NotRequired[str | None]  # W3C trace context, when tracing is on


class CustomerRegisteredPayload(TypedDict):
    customer_id: str
    first_name: str
    last_name: str
    email: str


class CustomerEmailChangedPayload(TypedDict):
    customer_id: str
    email: str
    previous_email: str


class ProductAddedPayload(TypedDict):
    sku: str
    name: str
    description: str
    price: str
    stock: int
    available: int


class ProductPriceChangedPayload(TypedDict):
    sku: str
    price: str
    previous_price: str


class AvailabilityPayload(TypedDict):
    """ProductRestocked, InventoryReserved and InventoryReleased: the read side uses only `available`."""

    sku: str
    quantity: int
    available: int


class PlacedLine(TypedDict):
    sku: str
    name: str
    quantity: int
    unit_price: str
    line_total: str


class OrderPlacedPayload(TypedDict):
    order_id: str
    customer_id: str
    lines: list[PlacedLine]
    total: str
    payment_reference: str


class InventoryReservationFailedPayload(TypedDict):
    order_id: str
    reason: str
    shortages: list[dict[str, Any]]


class PaymentPayload(TypedDict, total=False):
    """PaymentAuthorized, PaymentDeclined and PaymentVoided."""

    order_id: str
    authorization_id: str
    amount: str
    reason: str


class SoldLine(TypedDict):
    sku: str
    quantity: int


class OrderConfirmedPayload(TypedDict):
    order_id: str
    customer_id: str
    total: str
    lines: list[SoldLine]


class OrderCancelledPayload(TypedDict):
    order_id: str
    customer_id: str
    reason: str
