"""The floor under the projections: bare `INSERT ... ON CONFLICT DO UPDATE` of the rows a batch of events touches.

For each batch, one row per aggregate it touches (its last version in the batch), upserted into the read table that
aggregate feeds: read_customer and read_order_customer (Customer), read_product (Product), read_order (Order), one
statement per table, one transaction per batch. No inbox, no positions, no version guard, no handlers: the rows'
columns are taken from the event as it is (an order's status from its event type), which is less work than the
projections do (they also count a customer's orders, keep the order's timeline and the best sellers).
"""

import json
from collections.abc import Iterable
from typing import Any

from django.db import connection, transaction

NO_CUSTOMER = "00000000-0000-0000-0000-000000000000"
STATUS = {"OrderConfirmed": "confirmed", "OrderCancelled": "cancelled"}

UPSERTS: dict[str, tuple[str, str]] = {
    # aggregate type (or the orders' customer copy): (statement, one row's placeholders)
    "Customer": (
        "INSERT INTO read_customer (customer_id, first_name, last_name, email, orders_count, lifetime_value, "
        "last_order_at, version, updated_at) VALUES {values} ON CONFLICT (customer_id) DO UPDATE SET "
        "email = EXCLUDED.email, version = EXCLUDED.version, updated_at = EXCLUDED.updated_at",
        "(%s, %s, %s, %s, 0, 0, NULL, %s, now())",
    ),
    "OrderCustomer": (
        "INSERT INTO read_order_customer (customer_id, first_name, last_name, email) VALUES {values} "
        "ON CONFLICT (customer_id) DO UPDATE SET email = EXCLUDED.email",
        "(%s, %s, %s, %s)",
    ),
    "Product": (
        "INSERT INTO read_product (sku, name, description, price, available, version, updated_at) VALUES {values} "
        "ON CONFLICT (sku) DO UPDATE SET available = EXCLUDED.available, version = EXCLUDED.version, "
        "updated_at = EXCLUDED.updated_at",
        "(%s, %s, %s, %s, %s, %s, now())",
    ),
    "Order": (
        "INSERT INTO read_order (order_id, customer_id, customer_first_name, customer_last_name, customer_email, "
        "lines, total, status, cancellation_reason, payment_status, timeline, placed_at, version, updated_at) "
        "VALUES {values} ON CONFLICT (order_id) DO UPDATE SET status = EXCLUDED.status, "
        "version = EXCLUDED.version, updated_at = EXCLUDED.updated_at",
        "(%s, %s, '', '', '', %s, %s, %s, '', 'none', '[]', now(), %s, now())",
    ),
}

# (aggregate_type, aggregate_id, aggregate_version, event_type, payload)
Event = tuple[str, str, int, str, dict[str, Any]]


def _row(kind: str, aggregate_id: str, version: int, event_type: str, payload: dict[str, Any]) -> tuple[Any, ...]:
    if kind == "Customer":
        return (aggregate_id, payload.get("first_name", ""), payload.get("last_name", ""), payload["email"], version)
    if kind == "Product":
        name, description = payload.get("name", ""), payload.get("description", "")
        return (aggregate_id, name, description, payload.get("price", "0"), payload.get("available", 0), version)
    lines = json.dumps(payload.get("lines", []))
    status = STATUS.get(event_type, "pending")
    return (aggregate_id, payload.get("customer_id", NO_CUSTOMER), lines, payload.get("total", "0"), status, version)


def upsert_batch(events: Iterable[Event]) -> None:
    """One transaction: each touched aggregate's last row in the batch, one statement per read table."""
    latest: dict[str, dict[str, tuple[Any, ...]]] = {kind: {} for kind in UPSERTS}
    for kind, aggregate_id, version, event_type, payload in events:
        row = _row(kind, aggregate_id, version, event_type, payload)
        latest[kind][aggregate_id] = row
        if kind == "Customer":
            latest["OrderCustomer"][aggregate_id] = row[:4]
    with transaction.atomic(), connection.cursor() as cursor:
        for kind, rows in latest.items():
            if rows:
                statement, marks = UPSERTS[kind]
                values = ", ".join([marks] * len(rows))
                cursor.execute(statement.format(values=values), [value for row in rows.values() for value in row])


def from_envelope(envelope: dict[str, Any]) -> Event:
    return (
        envelope["aggregate_type"],
        envelope["aggregate_id"],
        envelope["aggregate_version"],
        envelope["event_type"],
        envelope["payload"],
    )
