"""Commands: what a client (or a saga step) asks the write side to do. Frozen dataclasses, standard library only."""

from dataclasses import dataclass, field
from decimal import Decimal
from typing import ClassVar
from uuid import UUID

from uuid_utils.compat import uuid7


@dataclass(frozen=True, kw_only=True)
class Command:
    idempotency_key: UUID
    command_id: UUID = field(default_factory=uuid7)
    # Fields the server fills in for each attempt: a retry with the same key differs in them, so the
    # idempotency fingerprint (which must only cover what the client sent) leaves them out.
    generated_fields: ClassVar[frozenset[str]] = frozenset({"command_id", "idempotency_key"})


# --- customers ------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class RegisterCustomer(Command):
    first_name: str
    last_name: str
    email: str


@dataclass(frozen=True, kw_only=True)
class ChangeCustomerEmail(Command):
    customer_id: UUID
    email: str
    expected_version: int | None = None


@dataclass(frozen=True, kw_only=True)
class EraseCustomer(Command):
    """Erase a customer's personal data (GDPR's right to erasure): an operator's command (`manage.py
    erase_customer`), not public over HTTP."""

    customer_id: UUID


# --- catalog --------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class AddProduct(Command):
    sku: str
    name: str
    description: str
    price: Decimal
    stock: int


@dataclass(frozen=True, kw_only=True)
class RestockProduct(Command):
    sku: str
    quantity: int
    expected_version: int | None = None


@dataclass(frozen=True, kw_only=True)
class ChangeProductPrice(Command):
    sku: str
    price: Decimal
    expected_version: int | None = None


# --- orders ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OrderLineRequest:
    sku: str
    quantity: int


@dataclass(frozen=True, kw_only=True)
class PlaceOrder(Command):
    customer_id: UUID
    lines: tuple[OrderLineRequest, ...]
    # The customer's card secret at the provider: kept only until the authorization is decided (docs/events.md).
    payment_token: str = field(repr=False)
    order_id: UUID = field(default_factory=uuid7)
    generated_fields: ClassVar[frozenset[str]] = Command.generated_fields | {"order_id"}


@dataclass(frozen=True, kw_only=True)
class CancelOrder(Command):
    """Cancel an order that is not confirmed yet; the fulfilment saga compensates what it did."""

    order_id: UUID
    reason: str
    note: str = ""


# --- saga steps (sent through the same mediator, not public over HTTP) -----------------------------
@dataclass(frozen=True, kw_only=True)
class ReserveInventory(Command):
    order_id: UUID


@dataclass(frozen=True, kw_only=True)
class ReleaseInventory(Command):
    order_id: UUID


@dataclass(frozen=True, kw_only=True)
class ConfirmOrder(Command):
    order_id: UUID


@dataclass(frozen=True, kw_only=True)
class AuthorizePayment(Command):
    """Authorize the order's total with the payment provider; already authorized is success."""

    order_id: UUID


@dataclass(frozen=True, kw_only=True)
class VoidPayment(Command):
    """Void the order's authorization (saga compensation); a no-op when nothing is authorized.

    `authorization_key`: the idempotency key the AuthorizePayment being compensated sent. Whatever the provider
    authorized with it is voided too, even an authorization the order never recorded (its command rolled back
    after the provider answered)."""

    order_id: UUID
    authorization_key: UUID | None = None
