"""The Order aggregate: placed, then confirmed or cancelled; its saga drives the steps in between."""

from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from commands_app.domain.aggregate import Aggregate
from commands_app.domain.limits import MAX_LINE_QUANTITY, MAX_MONEY
from commands_app.events import (
    InventoryReservationFailed,
    OrderCancelled,
    OrderConfirmed,
    OrderLine,
    OrderPlaced,
    PaymentAuthorized,
    PaymentDeclined,
    PaymentVoided,
    Shortage,
    SoldLine,
)
from commands_app.result import Error

PENDING, CONFIRMED, CANCELLED = "pending", "confirmed", "cancelled"
CANCELLATION_REASONS = ("insufficient_stock", "payment_declined", "payment_timeout", "customer_request")
# payment_status: no payment yet, authorized (money held), declined, or voided (the hold given back).
NO_PAYMENT, AUTHORIZED, DECLINED, VOIDED = "none", "authorized", "declined", "voided"


@dataclass(kw_only=True)
class Order(Aggregate):
    aggregate_type = "Order"
    key_field = "order_id"
    order_id: UUID
    customer_id: UUID
    lines: tuple[OrderLine, ...]
    total: Decimal
    # Names the payment method the order was placed with, and is no secret: the token itself is kept apart,
    # only until the authorization is decided (UnitOfWork.payment_tokens, commands_app/ports.py).
    payment_reference: str
    status: str = PENDING
    cancellation_reason: str = ""
    reserved: bool = False
    payment_status: str = NO_PAYMENT
    authorization_id: str = ""

    @classmethod
    def place(
        cls, *, order_id: UUID, customer_id: UUID, lines: tuple[OrderLine, ...], payment_reference: str
    ) -> "Order | Error":
        for line in lines:
            if line.quantity > MAX_LINE_QUANTITY:
                return Error(
                    "QUANTITY_TOO_LARGE",
                    f"At most {MAX_LINE_QUANTITY} units of one sku per order ({line.sku}: {line.quantity}).",
                    {"field": "lines", "max_quantity": MAX_LINE_QUANTITY},
                )
        total = sum((line.line_total for line in lines), Decimal("0.00"))
        if total > MAX_MONEY:
            return Error(
                "ORDER_TOTAL_TOO_LARGE",
                f"The order's total {total} exceeds {MAX_MONEY}; split it into several orders.",
                {"field": "lines", "total": str(total), "max_total": str(MAX_MONEY)},
            )
        order = cls(
            order_id=order_id, customer_id=customer_id, lines=lines, total=total, payment_reference=payment_reference
        )
        order.record(
            OrderPlaced(
                order_id=order_id,
                customer_id=customer_id,
                lines=lines,
                total=total,
                payment_reference=payment_reference,
            )
        )
        return order

    def reservation_failed(self, shortages: tuple[Shortage, ...]) -> None:
        self.record(
            InventoryReservationFailed(order_id=self.order_id, reason="insufficient_stock", shortages=shortages)
        )

    def ensure_pending(self) -> Error | None:
        if self.status != PENDING:
            return Error("ORDER_NOT_PENDING", f"The order is {self.status}.", {"status": self.status})
        return None

    def authorize_payment(self, authorization_id: str) -> Error | None:
        if error := self.ensure_pending():
            return error
        self.payment_status, self.authorization_id = AUTHORIZED, authorization_id
        self.record(PaymentAuthorized(order_id=self.order_id, authorization_id=authorization_id, amount=self.total))
        return None

    def decline_payment(self, reason: str) -> Error | None:
        if error := self.ensure_pending():
            return error
        self.payment_status = DECLINED
        self.record(PaymentDeclined(order_id=self.order_id, reason=reason))
        return None

    def void_payment(self) -> Error | None:
        """Give the authorization back; a confirmed order keeps its payment."""
        if self.payment_status != AUTHORIZED:
            return Error("PAYMENT_NOT_AUTHORIZED", "The order has no authorized payment.")
        if self.status == CONFIRMED:
            return Error("ORDER_ALREADY_CONFIRMED", "A confirmed order's payment is captured, not voided.")
        self.payment_status = VOIDED
        self.record(PaymentVoided(order_id=self.order_id, authorization_id=self.authorization_id, amount=self.total))
        return None

    def confirm(self) -> Error | None:
        if error := self.ensure_pending():
            return error
        if not self.reserved:
            return Error("INVENTORY_NOT_RESERVED", "The order's inventory is not reserved.")
        if self.payment_status != AUTHORIZED:
            return Error("PAYMENT_NOT_AUTHORIZED", "The order's payment is not authorized.")
        self.status = CONFIRMED
        self.record(
            OrderConfirmed(
                order_id=self.order_id,
                customer_id=self.customer_id,
                total=self.total,
                lines=tuple(SoldLine(line.sku, line.quantity) for line in self.lines),
            )
        )
        return None

    def cancel(self, reason: str, note: str = "") -> Error | None:
        if reason not in CANCELLATION_REASONS:
            return Error("INVALID_REASON", f"Unknown cancellation reason {reason!r}.", {"field": "reason"})
        if self.status == CONFIRMED:
            return Error("ORDER_ALREADY_CONFIRMED", "A confirmed order can no longer be cancelled.")
        if self.status == CANCELLED:
            return Error("ORDER_ALREADY_CANCELLED", "The order is cancelled already.")
        self.status = CANCELLED
        self.cancellation_reason = reason
        self.record(OrderCancelled(order_id=self.order_id, customer_id=self.customer_id, reason=reason, note=note))
        return None
