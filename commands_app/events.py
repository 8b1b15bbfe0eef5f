"""Domain events: what happened on the write side. Frozen dataclasses, standard library only.

This module is the event catalog: each event belongs to its aggregate type through its base class
(`CustomerEvent`, ...), and declaring an event class adds it to CATALOG. The read side receives the catalog as
data (queries_app/event_catalog.json, written by `make event-catalog`; tests keep it current and make every
consumer decide about every event). Payloads are documented in docs/events.md; events leave this app only as
JSON envelopes.

An event's schema changes by a new `schema_version` and an upcaster, declared here, from the previous version:
UPCASTERS below (docs/events.md, "Changing an event"). Personal data of a customer is named per event in
`personal_fields` and stored sealed with that customer's key (docs/security.md, "Erasure").
"""

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID

# Aggregate type -> its event classes, in the order they are declared here.
CATALOG: dict[str, list[type["DomainEvent"]]] = {}


@dataclass(frozen=True, kw_only=True)
class DomainEvent:
    schema_version: ClassVar[int] = 1
    # Payload fields holding a customer's personal data: stored sealed with the key of the customer the payload's
    # `customer_id` names, and read back as ERASED once that key is destroyed.
    personal_fields: ClassVar[tuple[str, ...]] = ()
    # Set by each aggregate's base class below; an event class inherits it from its base.
    aggregate_type: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "aggregate_type" not in vars(cls):
            if not cls.aggregate_type:
                raise TypeError(f"{cls.__name__} must derive from its aggregate's event base class")
            CATALOG.setdefault(cls.aggregate_type, []).append(cls)


def event_catalog() -> dict[str, list[dict[str, Any]]]:
    """The catalog as data: for each aggregate type, its events with their schema version and payload fields."""
    return {
        aggregate_type: [
            {
                "event_type": event.__name__,
                "schema_version": event.schema_version,
                "fields": [field.name for field in dataclasses.fields(event)],
                "personal_fields": list(event.personal_fields),
            }
            for event in events
        ]
        for aggregate_type, events in CATALOG.items()
    }


# --- Customer -------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class CustomerEvent(DomainEvent):
    aggregate_type: ClassVar[str] = "Customer"


@dataclass(frozen=True, kw_only=True)
class CustomerRegistered(CustomerEvent):
    """A customer registered; the email is lower-cased."""

    personal_fields: ClassVar[tuple[str, ...]] = ("first_name", "last_name", "email")
    customer_id: UUID
    first_name: str
    last_name: str
    email: str


@dataclass(frozen=True, kw_only=True)
class CustomerEmailChanged(CustomerEvent):
    """A customer's email changed."""

    personal_fields: ClassVar[tuple[str, ...]] = ("email", "previous_email")
    customer_id: UUID
    email: str
    previous_email: str


@dataclass(frozen=True, kw_only=True)
class CustomerErased(CustomerEvent):
    """A customer's personal data was erased (its key destroyed): read models show the customer as erased. It
    carries no personal data."""

    customer_id: UUID


# --- Product --------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class ProductEvent(DomainEvent):
    aggregate_type: ClassVar[str] = "Product"


@dataclass(frozen=True, kw_only=True)
class ProductAdded(ProductEvent):
    """A product entered the catalog with its first stock (available = stock)."""

    sku: str
    name: str
    description: str
    price: Decimal
    stock: int
    available: int


@dataclass(frozen=True, kw_only=True)
class ProductRestocked(ProductEvent):
    """Units were added to a product's stock."""

    sku: str
    quantity: int
    stock: int
    available: int


@dataclass(frozen=True, kw_only=True)
class ProductPriceChanged(ProductEvent):
    """A product's price changed."""

    sku: str
    price: Decimal
    previous_price: Decimal


@dataclass(frozen=True, kw_only=True)
class InventoryReserved(ProductEvent):
    """Units of a product were reserved for an order."""

    sku: str
    order_id: UUID
    quantity: int
    available: int


@dataclass(frozen=True, kw_only=True)
class InventoryReleased(ProductEvent):
    """An order's reservation of a product was released."""

    sku: str
    order_id: UUID
    quantity: int
    available: int


# --- Order ----------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class OrderEvent(DomainEvent):
    aggregate_type: ClassVar[str] = "Order"


@dataclass(frozen=True)
class OrderLine:
    sku: str
    name: str
    quantity: int
    unit_price: Decimal
    line_total: Decimal


@dataclass(frozen=True)
class Shortage:
    sku: str
    requested: int
    available: int


@dataclass(frozen=True)
class SoldLine:
    sku: str
    quantity: int


@dataclass(frozen=True, kw_only=True)
class OrderPlaced(OrderEvent):
    """An order was placed; the fulfilment saga takes it on. Version 2: `payment_reference`, no secret, where
    version 1 carried the customer's payment token."""

    schema_version: ClassVar[int] = 2
    order_id: UUID
    customer_id: UUID
    lines: tuple[OrderLine, ...]
    total: Decimal
    payment_reference: str


@dataclass(frozen=True, kw_only=True)
class InventoryReservationFailed(OrderEvent):
    """An order could not reserve its lines: not enough stock."""

    order_id: UUID
    reason: str
    shortages: tuple[Shortage, ...]


@dataclass(frozen=True, kw_only=True)
class PaymentAuthorized(OrderEvent):
    """The payment provider authorized an order's amount."""

    order_id: UUID
    authorization_id: str
    amount: Decimal


@dataclass(frozen=True, kw_only=True)
class PaymentDeclined(OrderEvent):
    """The payment provider declined an order's payment."""

    order_id: UUID
    reason: str


@dataclass(frozen=True, kw_only=True)
class PaymentVoided(OrderEvent):
    """An order's payment authorization was voided: the customer is not charged. Version 1 was named
    `PaymentRefunded` (a misnomer: nothing was ever captured, so nothing is refunded), with the same payload."""

    schema_version: ClassVar[int] = 2
    order_id: UUID
    authorization_id: str
    amount: Decimal


@dataclass(frozen=True, kw_only=True)
class OrderConfirmed(OrderEvent):
    """An order was confirmed: its reservations became sales and its payment is authorized."""

    order_id: UUID
    customer_id: UUID
    total: Decimal
    lines: tuple[SoldLine, ...]


@dataclass(frozen=True, kw_only=True)
class OrderCancelled(OrderEvent):
    """An order was cancelled (out of stock, payment declined or timed out, or by the customer)."""

    # The customer's own words.
    personal_fields: ClassVar[tuple[str, ...]] = ("note",)
    order_id: UUID
    customer_id: UUID
    reason: str
    note: str


# --- Upcasters: each older stored form of an event, to the next version -------------------------------------------
# A pure function of the payload (a dict of JSON values); registered in the log's upcaster registry
# (outbox_app.upcasting) by this app's ready(). Never edit one once released: the log holds its input forever.
Payload = dict[str, Any]


@dataclass(frozen=True)
class Upcast:
    event_type: str
    from_version: int
    to_type: str
    change: Callable[[Payload], Payload]


# What an upcast OrderPlaced v1 names as its payment reference when the stored row has none (v1 recorded none;
# the migration that scrubbed the tokens wrote the order's reference into each v1 row it found).
UNRECORDED_PAYMENT_REFERENCE = "pm_unrecorded"


def order_placed_v1_to_v2(payload: Payload) -> Payload:
    """v1 carried the customer's payment token (a card secret); v2 names the payment by a reference instead."""
    payload.pop("payment_token", None)
    payload.setdefault("payment_reference", UNRECORDED_PAYMENT_REFERENCE)
    return payload


def payment_refunded_v1_to_payment_voided_v2(payload: Payload) -> Payload:
    """A rename: `void_payment` gives the authorization back; nothing was charged, so nothing is refunded."""
    return payload


UPCASTERS: tuple[Upcast, ...] = (
    Upcast("OrderPlaced", 1, "OrderPlaced", order_placed_v1_to_v2),
    Upcast("PaymentRefunded", 1, "PaymentVoided", payment_refunded_v1_to_payment_voided_v2),
)
