"""Envelopes as docs/events.md describes them, for the tests.

Each stream hands out consecutive versions of one aggregate; `write_to_log` stores envelopes as event-log
rows and returns them as the relay would deliver them (with the database clock's occurred_at).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db import transaction
from django.utils import timezone
from uuid_utils.compat import uuid7

from outbox_app.models import OutboxEvent
from outbox_app.outbox import NewEvent, append
from queries_app.envelopes import Envelope


@dataclass
class Stream:
    aggregate_type: str
    aggregate_id: str
    version: int = 0

    def event(
        self, event_type: str, payload: dict[str, Any], *, version: int | None = None, schema_version: int = 1
    ) -> Envelope:
        self.version = version if version is not None else self.version + 1
        return Envelope(
            event_id=str(uuid7()),
            event_type=event_type,
            schema_version=schema_version,
            aggregate_type=self.aggregate_type,
            aggregate_id=self.aggregate_id,
            aggregate_version=self.version,
            occurred_at=timezone.now().isoformat(),
            correlation_id="test",
            causation_id=None,
            payload=payload,
        )


@dataclass
class CustomerStream(Stream):
    aggregate_type: str = "Customer"
    aggregate_id: str = field(default_factory=lambda: str(uuid7()))

    @property
    def customer_id(self) -> str:
        return self.aggregate_id

    def registered(self, first_name: str = "Ada", last_name: str = "Lovelace", email: str = "") -> Envelope:
        email = email or f"{first_name.lower()}.{self.aggregate_id[-6:]}@example.org"
        payload = {"customer_id": self.aggregate_id, "first_name": first_name, "last_name": last_name, "email": email}
        return self.event("CustomerRegistered", payload)

    def email_changed(self, email: str, previous_email: str = "") -> Envelope:
        payload = {"customer_id": self.aggregate_id, "email": email, "previous_email": previous_email}
        return self.event("CustomerEmailChanged", payload)


@dataclass
class ProductStream(Stream):
    aggregate_type: str = "Product"
    aggregate_id: str = field(default_factory=lambda: f"SKU-{str(uuid7())[-8:].upper()}")

    @property
    def sku(self) -> str:
        return self.aggregate_id

    def added(self, name: str = "Teapot", description: str = "", price: str = "19.90", stock: int = 10) -> Envelope:
        payload = {
            "sku": self.sku,
            "name": name,
            "description": description,
            "price": price,
            "stock": stock,
            "available": stock,
        }
        return self.event("ProductAdded", payload)

    def restocked(self, quantity: int, stock: int, available: int) -> Envelope:
        payload = {"sku": self.sku, "quantity": quantity, "stock": stock, "available": available}
        return self.event("ProductRestocked", payload)

    def price_changed(self, price: str, previous_price: str = "0.00") -> Envelope:
        return self.event("ProductPriceChanged", {"sku": self.sku, "price": price, "previous_price": previous_price})

    def reserved(self, order_id: str, quantity: int, available: int) -> Envelope:
        payload = {"sku": self.sku, "order_id": order_id, "quantity": quantity, "available": available}
        return self.event("InventoryReserved", payload)

    def released(self, order_id: str, quantity: int, available: int) -> Envelope:
        payload = {"sku": self.sku, "order_id": order_id, "quantity": quantity, "available": available}
        return self.event("InventoryReleased", payload)


def line(sku: str, quantity: int = 1, unit_price: str = "19.90", name: str = "Teapot") -> dict[str, Any]:
    total = f"{Decimal(unit_price) * quantity:.2f}"
    return {"sku": sku, "name": name, "quantity": quantity, "unit_price": unit_price, "line_total": total}


@dataclass
class OrderStream(Stream):
    customer_id: str = ""
    aggregate_type: str = "Order"
    aggregate_id: str = field(default_factory=lambda: str(uuid7()))
    lines: list[dict[str, Any]] = field(default_factory=list)

    @property
    def order_id(self) -> str:
        return self.aggregate_id

    @property
    def total(self) -> str:
        return f"{sum((Decimal(item['line_total']) for item in self.lines), Decimal('0')):.2f}"

    def placed(self, *lines: dict[str, Any]) -> Envelope:
        self.lines = list(lines)
        payload = {
            "order_id": self.order_id,
            "customer_id": self.customer_id,
            "lines": self.lines,
            "total": self.total,
            "payment_reference": "pm_test",
        }
        return self.event("OrderPlaced", payload, schema_version=2)

    def reservation_failed(self, sku: str, requested: int, available: int) -> Envelope:
        shortages = [{"sku": sku, "requested": requested, "available": available}]
        payload = {"order_id": self.order_id, "reason": "insufficient_stock", "shortages": shortages}
        return self.event("InventoryReservationFailed", payload)

    def payment_authorized(self, authorization_id: str = "auth_1") -> Envelope:
        payload = {"order_id": self.order_id, "authorization_id": authorization_id, "amount": self.total}
        return self.event("PaymentAuthorized", payload)

    def payment_declined(self, reason: str = "card_declined") -> Envelope:
        return self.event("PaymentDeclined", {"order_id": self.order_id, "reason": reason})

    def payment_voided(self, authorization_id: str = "auth_1") -> Envelope:
        payload = {"order_id": self.order_id, "authorization_id": authorization_id, "amount": self.total}
        return self.event("PaymentVoided", payload, schema_version=2)

    def confirmed(self) -> Envelope:
        sold = [{"sku": item["sku"], "quantity": item["quantity"]} for item in self.lines]
        payload = {"order_id": self.order_id, "customer_id": self.customer_id, "total": self.total, "lines": sold}
        return self.event("OrderConfirmed", payload)

    def cancelled(self, reason: str) -> Envelope:
        return self.event(
            "OrderCancelled", {"order_id": self.order_id, "customer_id": self.customer_id, "reason": reason}
        )


def write_to_log(envelopes: Sequence[Envelope]) -> list[Envelope]:
    """Store the envelopes as event-log rows; they come back as the relay delivers them."""
    with transaction.atomic():
        ids = append(
            [
                NewEvent(
                    event_id=UUID(e["event_id"]),
                    event_type=e["event_type"],
                    schema_version=e["schema_version"],
                    aggregate_type=e["aggregate_type"],
                    aggregate_id=e["aggregate_id"],
                    aggregate_version=e["aggregate_version"],
                    payload=e["payload"],
                    metadata={"correlation_id": e["correlation_id"], "causation_id": e["causation_id"]},
                )
                for e in envelopes
            ]
        )
    rows = OutboxEvent.objects.in_bulk(ids)
    return [Envelope(**rows[event_id].to_envelope()) for event_id in ids]  # type: ignore[typeddict-item]
