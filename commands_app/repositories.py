"""Repositories map aggregates to write-model rows and remember which aggregates they handed out.

Reads run at once (the one-column existence checks as plain statements, the others through the ORM); writes
are staged as statements that the unit of work sends together at its commit.
"""

from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db.models import Model

from commands_app.domain.aggregate import Aggregate
from commands_app.domain.customer import Customer
from commands_app.domain.order import Order
from commands_app.domain.product import Product
from commands_app.events import OrderLine
from commands_app.models import CustomerRecord, OrderRecord, PaymentToken, ProductRecord
from commands_app.serialization import to_json_value
from commands_app.statements import Statement, delete, exists, insert, update


class ConcurrencyError(Exception):
    """The row changed under us although its aggregate lock was held: a bug, never a business error."""


def _loaded_version(aggregate: Aggregate) -> int:
    return aggregate.version - len(aggregate.pending_events)


class Repository:
    def __init__(self, writes: list[Statement]) -> None:
        self.seen: list[Aggregate] = []
        self._stored: set[int] = set()
        self._writes = writes

    def _track(self, aggregate: Any) -> Any:
        self.seen.append(aggregate)
        return aggregate

    def _stage(self, aggregate: Aggregate, write: Statement) -> None:
        self._writes.append(write)
        self._stored.add(id(aggregate))

    def _stage_update(self, aggregate: Aggregate, model: type[Model], changed: dict[str, Any], **key: Any) -> None:
        """Stage the row's UPDATE at the version it was loaded at; another row count raises ConcurrencyError."""
        ((name, value),) = key.items()
        write = update(
            model,
            changed,
            where={name: value, "version": _loaded_version(aggregate)},
            mismatch=lambda: ConcurrencyError(f"{aggregate.aggregate_type} {value} moved under its lock."),
        )
        self._stage(aggregate, write)

    def wrote(self) -> bool:
        """Some aggregate was added or saved (its write is staged for the unit of work's commit)."""
        return bool(self._stored)

    def unsaved(self) -> list[Aggregate]:
        """Aggregates with events that were never written: the unit of work refuses to commit them."""
        return [a for a in self.seen if a.pending_events and id(a) not in self._stored]


class CustomerRepository(Repository):
    def add(self, customer: Customer) -> None:
        row = {
            "customer_id": customer.customer_id,
            "first_name": customer.first_name,
            "last_name": customer.last_name,
            "email": customer.email,
            "version": customer.version,
        }
        self._stage(self._track(customer), insert(CustomerRecord, row))

    def get(self, customer_id: UUID) -> Customer | None:
        row = CustomerRecord.objects.filter(customer_id=customer_id).first()
        if row is None:
            return None
        return self._track(
            Customer(
                customer_id=row.customer_id,
                first_name=row.first_name,
                last_name=row.last_name,
                email=row.email,
                version=row.version,
            )
        )

    def exists(self, customer_id: UUID) -> bool:
        return exists(CustomerRecord, customer_id=customer_id)

    def save(self, customer: Customer) -> None:
        changed = {"email": customer.email, "version": customer.version}
        self._stage_update(customer, CustomerRecord, changed, customer_id=customer.customer_id)

    def email_taken(self, email: str) -> bool:
        return exists(CustomerRecord, email=email)


class ProductRepository(Repository):
    def add(self, product: Product) -> None:
        row = {
            "sku": product.sku,
            "name": product.name,
            "description": product.description,
            "price": product.price,
            "stock": product.stock,
            "reserved": product.reserved,
            "sold": product.sold,
            "version": product.version,
        }
        self._stage(self._track(product), insert(ProductRecord, row))

    def get(self, sku: str) -> Product | None:
        row = ProductRecord.objects.filter(sku=sku).first()
        if row is None:
            return None
        return self._track(
            Product(
                sku=row.sku,
                name=row.name,
                description=row.description,
                price=row.price,
                stock=row.stock,
                reserved=row.reserved,
                sold=row.sold,
                version=row.version,
            )
        )

    def exists(self, sku: str) -> bool:
        return exists(ProductRecord, sku=sku)

    def save(self, product: Product) -> None:
        changed = {
            "price": product.price,
            "stock": product.stock,
            "reserved": product.reserved,
            "sold": product.sold,
            "version": product.version,
        }
        self._stage_update(product, ProductRecord, changed, sku=product.sku)


class OrderRepository(Repository):
    def add(self, order: Order) -> None:
        row = {
            "order_id": order.order_id,
            "customer_id": order.customer_id,
            "lines": to_json_value(order.lines),
            "total": order.total,
            "payment_reference": order.payment_reference,
            "status": order.status,
            "cancellation_reason": order.cancellation_reason,
            "reserved": order.reserved,
            "payment_status": order.payment_status,
            "authorization_id": order.authorization_id,
            "version": order.version,
        }
        self._stage(self._track(order), insert(OrderRecord, row))

    def get(self, order_id: UUID) -> Order | None:
        row = OrderRecord.objects.filter(order_id=order_id).first()
        if row is None:
            return None
        lines = tuple(
            OrderLine(
                sku=line["sku"],
                name=line["name"],
                quantity=int(line["quantity"]),
                unit_price=Decimal(line["unit_price"]),
                line_total=Decimal(line["line_total"]),
            )
            for line in row.lines
        )
        return self._track(
            Order(
                order_id=row.order_id,
                customer_id=row.customer_id,
                lines=lines,
                total=row.total,
                payment_reference=row.payment_reference,
                status=row.status,
                cancellation_reason=row.cancellation_reason,
                reserved=row.reserved,
                payment_status=row.payment_status,
                authorization_id=row.authorization_id,
                version=row.version,
            )
        )

    def save(self, order: Order) -> None:
        changed = {
            "status": order.status,
            "cancellation_reason": order.cancellation_reason,
            "reserved": order.reserved,
            "payment_status": order.payment_status,
            "authorization_id": order.authorization_id,
            "version": order.version,
        }
        self._stage_update(order, OrderRecord, changed, order_id=order.order_id)


class PaymentTokens:
    """Orders' payment tokens while their authorization is undecided (commands_app.models.PaymentToken).

    keep() and forget() are staged with the unit of work's other writes, so a token is written in the same
    transaction as the order it pays for, and deleted in the one that decides its authorization or ends it.
    """

    def __init__(self, writes: list[Statement]) -> None:
        self._writes = writes
        self._wrote = False

    def keep(self, order_id: UUID, token: str) -> None:
        self._stage(insert(PaymentToken, {"order_id": order_id, "token": token}))

    def get(self, order_id: UUID) -> str | None:
        return PaymentToken.objects.filter(order_id=order_id).values_list("token", flat=True).first()

    def forget(self, order_id: UUID) -> None:
        self._stage(delete(PaymentToken, where={"order_id": order_id}))

    def wrote(self) -> bool:
        return self._wrote

    def _stage(self, write: Statement) -> None:
        self._writes.append(write)
        self._wrote = True
