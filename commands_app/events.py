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
    """A customer registered; the email is lower-cased."""

    customer_id: UUID
    first_name: str
    last_name: str
    email: str


@dataclass(frozen=True, kw_only=True)
class CustomerEmailChanged(DomainEvent):
    """A customer's email changed."""

    customer_id: UUID
    email: str
    previous_email: str


# --- Product --------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class ProductAdded(DomainEvent):
    """A product entered the catalog with its first stock (available = stock)."""

    sku: str
    name: str
    description: str
    price: Decimal
    stock: int
    available: int


@dataclass(frozen=True, kw_only=True)
class ProductRestocked(DomainEvent):
    """Units were added to a product's stock."""

    sku: str
    quantity: int
    stock: int
    available: int


@dataclass(frozen=True, kw_only=True)
class ProductPriceChanged(DomainEvent):
    """A product's price changed."""

    sku: str
    price: Decimal
    previous_price: Decimal


@dataclass(frozen=True, kw_only=True)
class InventoryReserved(DomainEvent):
    """Units of a product were reserved for an order."""

    sku: str
    order_id: UUID
    quantity: int
    available: int


@dataclass(frozen=True, kw_only=True)
class InventoryReleased(DomainEvent):
    """An order's reservation of a product was released."""

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
    """An order was placed; the fulfilment saga takes it on. Version 2: `payment_reference`, no secret, where
    version 1 carried the customer's payment token."""

    schema_version = 2
    order_id: UUID
    customer_id: UUID
    lines: tuple[OrderLine, ...]
    total: Decimal
    payment_reference: str


@dataclass(frozen=True, kw_only=True)
class InventoryReservationFailed(DomainEvent):
    """An order could not reserve its lines: not enough stock."""

    order_id: UUID
    reason: str
    shortages: tuple[Shortage, ...]


@dataclass(frozen=True, kw_only=True)
class PaymentAuthorized(DomainEvent):
    """The payment provider authorized an order's amount."""

    order_id: UUID
    authorization_id: str
    amount: Decimal


@dataclass(frozen=True, kw_only=True)
class PaymentDeclined(DomainEvent):
    """The payment provider declined an order's payment."""

    order_id: UUID
    reason: str


@dataclass(frozen=True, kw_only=True)
class PaymentRefunded(DomainEvent):
    """An order's payment authorization was voided: the customer is not charged."""

    order_id: UUID
    authorization_id: str
    amount: Decimal


@dataclass(frozen=True, kw_only=True)
class OrderConfirmed(DomainEvent):
    """An order was confirmed: its reservations became sales and its payment is authorized."""

    order_id: UUID
    customer_id: UUID
    total: Decimal
    lines: tuple[SoldLine, ...]


@dataclass(frozen=True, kw_only=True)
class OrderCancelled(DomainEvent):
    """An order was cancelled (out of stock, payment declined or timed out, or by the customer)."""

    order_id: UUID
    customer_id: UUID
    reason: str
    note: str


# Which aggregate writes which events, in the order docs/events.md lists them (the catalog outbox_app publishes).
EVENTS_BY_AGGREGATE: dict[str, tuple[type[DomainEvent], ...]] = {
    "Customer": (CustomerRegistered, CustomerEmailChanged),
    "Product": (ProductAdded, ProductRestocked, ProductPriceChanged, InventoryReserved, InventoryReleased),
    "Order": (
        OrderPlaced,
        InventoryReservationFailed,
        PaymentAuthorized,
        PaymentDeclined,
        PaymentRefunded,
        OrderConfirmed,
        OrderCancelled,
    ),
}
