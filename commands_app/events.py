"""Domain events: what happened on the write side. Frozen dataclasses, standard library only.

Their payloads are documented in docs/events.md; they leave this app only as JSON envelopes.
"""

from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID


@dataclass(frozen=True, kw_only=True)
class DomainEvent:
    schema_version = 1


# --- Customer -------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class CustomerRegistered(DomainEvent):
    customer_id: UUID
    first_name: str
    last_name: str
    email: str


@dataclass(frozen=True, kw_only=True)
class CustomerEmailChanged(DomainEvent):
    customer_id: UUID
    email: str
    previous_email: str


# --- Product --------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class ProductAdded(DomainEvent):
    sku: str
    name: str
    description: str
    price: Decimal
    stock: int
    available: int


@dataclass(frozen=True, kw_only=True)
class ProductRestocked(DomainEvent):
    sku: str
    quantity: int
    stock: int
    available: int


@dataclass(frozen=True, kw_only=True)
class ProductPriceChanged(DomainEvent):
    sku: str
    price: Decimal
    previous_price: Decimal


@dataclass(frozen=True, kw_only=True)
class InventoryReserved(DomainEvent):
    sku: str
    order_id: UUID
    quantity: int
    available: int


@dataclass(frozen=True, kw_only=True)
class InventoryReleased(DomainEvent):
    sku: str
    order_id: UUID
    quantity: int
    available: int


# --- Order ----------------------------------------------------------------------------------------
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
class OrderPlaced(DomainEvent):
    """Version 2: `payment_reference`, no secret, where version 1 carried the customer's payment token."""

    schema_version = 2
    order_id: UUID
    customer_id: UUID
    lines: tuple[OrderLine, ...]
    total: Decimal
    payment_reference: str


@dataclass(frozen=True, kw_only=True)
class InventoryReservationFailed(DomainEvent):
    order_id: UUID
    reason: str
    shortages: tuple[Shortage, ...]


@dataclass(frozen=True, kw_only=True)
class PaymentAuthorized(DomainEvent):
    order_id: UUID
    authorization_id: str
    amount: Decimal


@dataclass(frozen=True, kw_only=True)
class PaymentDeclined(DomainEvent):
    order_id: UUID
    reason: str


@dataclass(frozen=True, kw_only=True)
class PaymentRefunded(DomainEvent):
    """The authorization was voided: the customer is not charged."""

    order_id: UUID
    authorization_id: str
    amount: Decimal


@dataclass(frozen=True, kw_only=True)
class OrderConfirmed(DomainEvent):
    order_id: UUID
    customer_id: UUID
    total: Decimal
    lines: tuple[SoldLine, ...]


@dataclass(frozen=True, kw_only=True)
class OrderCancelled(DomainEvent):
    order_id: UUID
    customer_id: UUID
    reason: str
    note: str
