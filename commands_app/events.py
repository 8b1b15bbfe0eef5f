"""Domain events: what happened on the write side. Frozen dataclasses, standard library only.

This module is the event catalog: each event belongs to its aggregate type through its base class
(`CustomerEvent`, ...), and declaring an event class adds it to CATALOG. The read side receives the catalog as
data (queries_app/event_catalog.json, written by `make event-catalog`; tests keep it current and make every
consumer decide about every event). Payloads are documented in docs/events.md; events leave this app only as
JSON envelopes.
"""

import dataclasses
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID

# Aggregate type -> its event classes, in the order they are declared here.
CATALOG: dict[str, list[type["DomainEvent"]]] = {}


@dataclass(frozen=True, kw_only=True)
class DomainEvent:
    schema_version: ClassVar[int] = 1
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

    customer_id: UUID
    first_name: str
    last_name: str
    email: str


@dataclass(frozen=True, kw_only=True)
class CustomerEmailChanged(CustomerEvent):
    """A customer's email changed."""

    customer_id: UUID
    email: str
    previous_email: str


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
class PaymentRefunded(OrderEvent):
    """An order's payment authorization was voided: the customer is not charged."""

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

    order_id: UUID
    customer_id: UUID
    reason: str
    note: str
