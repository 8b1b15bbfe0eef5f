"""Synthetic event logs for the relay, projection and replay figures.

Two kinds, both with the real envelope shape and created_at in version order per aggregate (as the advisory lock
makes it in production):
  - customer events only (insert_customer_events), written by PostgreSQL itself: CustomerRegistered as version 1 of
    each aggregate and CustomerEmailChanged after it; cheap, for the relay, which does not read payloads;
  - the business flow's mix (insert_mixed_events): products, customers, and orders of several lines through the
    saga's events (inventory per line, payment, confirmation or cancellation), built from the write side's own
    event classes and serialized as the unit of work serializes them, so the projections apply them as they are.
"""

import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db import connection, transaction
from uuid_utils.compat import uuid7

from bench.environment import vacuum_analyze
from commands_app.events import (
    CustomerEmailChanged,
    CustomerRegistered,
    DomainEvent,
    InventoryReleased,
    InventoryReservationFailed,
    InventoryReserved,
    OrderCancelled,
    OrderConfirmed,
    OrderLine,
    OrderPlaced,
    PaymentAuthorized,
    PaymentDeclined,
    ProductAdded,
    ProductPriceChanged,
    ProductRestocked,
    Shortage,
    SoldLine,
)
from commands_app.unit_of_work import event_payload
from outbox_app.models import OutboxEvent

TABLE = OutboxEvent._meta.db_table

_INSERT = f"""
INSERT INTO {TABLE} (event_id, event_type, schema_version, aggregate_type, aggregate_id, aggregate_version,
                     payload, metadata, created_at, published_at, dead_at, attempts, next_attempt_at, last_error)
SELECT gen_random_uuid(),
       CASE WHEN v = 1 THEN 'CustomerRegistered' ELSE 'CustomerEmailChanged' END,
       1, 'Customer', c.id::text, v,
       CASE WHEN v = 1
            THEN jsonb_build_object('customer_id', c.id::text, 'first_name', 'Ada', 'last_name', 'Lovelace',
                                    'email', 'c' || a || '-v1@bench.example')
            ELSE jsonb_build_object('customer_id', c.id::text, 'email', 'c' || a || '-v' || v || '@bench.example',
                                    'previous_email', 'c' || a || '-v' || (v - 1) || '@bench.example')
       END,
       jsonb_build_object('correlation_id', 'bench-' || a, 'causation_id', gen_random_uuid()::text,
                          'client_id', 'bench', 'command', 'Bench'),
       clock_timestamp(), CASE WHEN %(published)s THEN clock_timestamp() END, NULL, %(attempts)s, NULL, ''
FROM generate_series(1, %(versions)s) AS v
CROSS JOIN LATERAL generate_series(1, LEAST(%(aggregates)s, %(events)s - (v - 1) * %(aggregates)s)) AS a
CROSS JOIN LATERAL (SELECT md5('bench-customer-' || a)::uuid AS id) AS c
ORDER BY v, a
"""


def insert_customer_events(events: int, *, versions: int = 2, published: bool = False) -> None:
    """`events` events over ceil(events / versions) customers, each with up to `versions` versions."""
    aggregates = -(-events // versions)
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT,
            {
                "versions": versions,
                "aggregates": aggregates,
                "events": events,
                "published": published,
                "attempts": 1 if published else 0,
            },
        )
    vacuum_analyze(TABLE)


# --- The business flow's mix --------------------------------------------------------------------------------------
# Products and customers first, then orders of several lines placed while others are in flight, each going through
# the saga's events as the write side writes them: placed, stock reserved per line (the Product aggregate),
# payment authorized, confirmed; or declined and released, or short of stock, or cancelled by the customer.
# Between orders, now and then: an email change, a price change; a restock when an order finds a product short.

ADJECTIVES = (
    "red",
    "blue",
    "green",
    "black",
    "white",
    "ceramic",
    "wooden",
    "steel",
    "glass",
    "linen",
    "cotton",
    "leather",
    "bamboo",
    "copper",
    "vintage",
    "classic",
    "compact",
    "large",
    "small",
    "travel",
    "organic",
)
NOUNS = (
    "mug",
    "teapot",
    "kettle",
    "lamp",
    "chair",
    "table",
    "shelf",
    "basket",
    "blanket",
    "pillow",
    "towel",
    "bottle",
    "jar",
    "bowl",
    "plate",
    "knife",
    "spoon",
    "candle",
    "clock",
    "mirror",
    "notebook",
    "backpack",
)
# Orders in flight at once: their events interleave in the log, as concurrent sagas' do.
IN_FLIGHT = 8
DECLINED, CUSTOMER_CANCELLED = 0.06, 0.02
RESTOCK = 500


@dataclass
class MixedLog:
    """What a mixed log holds: the bench's queries pick their keys from it."""

    events: int = 0
    skus: list[str] = field(default_factory=list)
    customers: list[str] = field(default_factory=list)
    orders: list[str] = field(default_factory=list)
    by_type: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        kinds = ", ".join(f"{name} {count:,}" for name, count in sorted(self.by_type.items()))
        return (
            f"{self.events:,} events: {len(self.skus):,} products, {len(self.customers):,} customers, "
            f"{len(self.orders):,} orders ({kinds})"
        )


class _MixedWriter:
    """Gives each event its aggregate's next version, an id, a time after the previous one, and writes it."""

    def __init__(self, copy: Any, log: MixedLog, *, published: bool) -> None:
        self.copy, self.log, self.published = copy, log, published
        self.versions: Counter[tuple[str, str]] = Counter()
        self.clock = datetime.now(UTC) - timedelta(days=1)
        self.metadata = json.dumps({"correlation_id": "bench", "client_id": "bench", "command": "Bench"})

    def __call__(self, event: DomainEvent, aggregate_id: str) -> None:
        key = (event.aggregate_type, aggregate_id)
        self.versions[key] += 1
        self.clock += timedelta(microseconds=50)
        self.log.events += 1
        self.log.by_type[type(event).__name__] += 1
        self.copy.write_row(
            (
                uuid7(),
                type(event).__name__,
                event.schema_version,
                event.aggregate_type,
                aggregate_id,
                self.versions[key],
                json.dumps(event_payload(event)),
                self.metadata,
                self.clock,
                self.clock if self.published else None,
                1 if self.published else 0,
                self.log.events if self.published else None,
                "",
            )
        )


class _Shop:
    """The write side's state the events must agree with: stock, prices, emails."""

    def __init__(self, rng: random.Random, emit: _MixedWriter, log: MixedLog) -> None:
        self.rng, self.emit, self.log = rng, emit, log
        self.names: dict[str, str] = {}
        self.prices: dict[str, Decimal] = {}
        self.available: dict[str, int] = {}
        self.emails: dict[str, str] = {}
        self.weights: list[float] = []

    def add_products(self, count: int) -> None:
        for i in range(count):
            sku = f"SKU-{i:05d}"
            name = f"{self.rng.choice(ADJECTIVES).title()} {self.rng.choice(ADJECTIVES)} {self.rng.choice(NOUNS)}"
            price = Decimal(self.rng.randrange(199, 19999)).scaleb(-2)
            stock = self.rng.randrange(50, 500)
            self.names[sku], self.prices[sku], self.available[sku] = name, price, stock
            description = f"A {name.lower()} for every day, number {i}."
            self.emit(
                ProductAdded(sku=sku, name=name, description=description, price=price, stock=stock, available=stock),
                sku,
            )
            self.log.skus.append(sku)
        # A few products sell much more than the others, as in any shop.
        self.weights = [1 / (rank + 1) ** 0.8 for rank in range(count)]

    def add_customers(self, count: int) -> None:
        for i in range(count):
            customer_id = uuid7()
            email = f"c{i}@bench.example"
            self.emails[str(customer_id)] = email
            self.emit(
                CustomerRegistered(customer_id=customer_id, first_name="Ada", last_name="Lovelace", email=email),
                str(customer_id),
            )
            self.log.customers.append(str(customer_id))

    def order(self) -> Iterator[tuple[DomainEvent, str]]:
        """One order's events, each computed when the log reaches it (stock is shared with the orders in flight)."""
        rng = self.rng
        order_id, customer = uuid7(), rng.choice(self.log.customers)
        skus = list(dict.fromkeys(rng.choices(self.log.skus, weights=self.weights, k=rng.randint(2, 5))))
        lines = [
            OrderLine(
                sku=sku,
                name=self.names[sku],
                quantity=(q := rng.randint(1, 3)),
                unit_price=self.prices[sku],
                line_total=self.prices[sku] * q,
            )
            for sku in skus
        ]
        total = sum((line.line_total for line in lines), Decimal("0"))
        key, customer_id = str(order_id), UUID(customer)
        self.log.orders.append(key)
        yield (
            OrderPlaced(
                order_id=order_id,
                customer_id=customer_id,
                lines=tuple(lines),
                total=total,
                payment_reference=f"tok_{key[-12:]}",
            ),
            key,
        )
        shortages = [
            Shortage(sku=line.sku, requested=line.quantity, available=self.available[line.sku])
            for line in lines
            if self.available[line.sku] < line.quantity
        ]
        if shortages:
            yield (
                InventoryReservationFailed(order_id=order_id, reason="insufficient_stock", shortages=tuple(shortages)),
                key,
            )
            yield OrderCancelled(order_id=order_id, customer_id=customer_id, reason="insufficient_stock", note=""), key
            # The shop restocks what ran out.
            for shortage in shortages:
                self.available[shortage.sku] += RESTOCK
                available = self.available[shortage.sku]
                yield (
                    ProductRestocked(sku=shortage.sku, quantity=RESTOCK, stock=available, available=available),
                    shortage.sku,
                )
            return
        for line in lines:
            self.available[line.sku] -= line.quantity
            yield (
                InventoryReserved(
                    sku=line.sku, order_id=order_id, quantity=line.quantity, available=self.available[line.sku]
                ),
                line.sku,
            )
        fate = rng.random()
        if fate < DECLINED + CUSTOMER_CANCELLED:
            if fate < DECLINED:
                yield PaymentDeclined(order_id=order_id, reason="card_declined"), key
            for line in lines:
                self.available[line.sku] += line.quantity
                yield (
                    InventoryReleased(
                        sku=line.sku, order_id=order_id, quantity=line.quantity, available=self.available[line.sku]
                    ),
                    line.sku,
                )
            reason = "payment_declined" if fate < DECLINED else "customer_request"
            yield OrderCancelled(order_id=order_id, customer_id=customer_id, reason=reason, note=""), key
            return
        yield PaymentAuthorized(order_id=order_id, authorization_id=f"auth_{key[-12:]}", amount=total), key
        yield (
            OrderConfirmed(
                order_id=order_id,
                customer_id=customer_id,
                total=total,
                lines=tuple(SoldLine(sku=line.sku, quantity=line.quantity) for line in lines),
            ),
            key,
        )

    def now_and_then(self) -> Iterator[tuple[DomainEvent, str]]:
        rng = self.rng
        if rng.random() < 0.05:
            customer = rng.choice(self.log.customers)
            previous, email = self.emails[customer], f"{customer[-12:]}-{rng.randrange(10**6)}@bench.example"
            self.emails[customer] = email
            yield CustomerEmailChanged(customer_id=UUID(customer), email=email, previous_email=previous), customer
        if rng.random() < 0.02:
            sku = rng.choice(self.log.skus)
            previous_price, self.prices[sku] = self.prices[sku], Decimal(rng.randrange(199, 19999)).scaleb(-2)
            yield ProductPriceChanged(sku=sku, price=self.prices[sku], previous_price=previous_price), sku


def insert_mixed_events(events: int, *, published: bool = True, seed: int = 15) -> MixedLog:
    """A log of exactly `events` events of the whole business flow (products and customers first, then orders),
    written with COPY in log order; published (with log positions) unless told otherwise."""
    rng = random.Random(seed)
    log = MixedLog()
    columns = (
        "event_id, event_type, schema_version, aggregate_type, aggregate_id, aggregate_version, payload, metadata, "
        "created_at, published_at, attempts, log_position, last_error"
    )
    with (
        transaction.atomic(),
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {TABLE} ({columns}) FROM STDIN") as copy,
    ):
        emit = _MixedWriter(copy, log, published=published)
        shop = _Shop(rng, emit, log)
        shop.add_products(min(5000, max(50, events // 500)))
        shop.add_customers(min(events // 4, max(100, events // 40)))
        in_flight: list[Iterator[tuple[DomainEvent, str]]] = []
        while log.events < events:
            while len(in_flight) < IN_FLIGHT:
                in_flight.append(shop.order())
                in_flight.append(shop.now_and_then())
            flow = rng.randrange(len(in_flight))
            try:
                emit(*next(in_flight[flow]))
            except StopIteration:
                in_flight.pop(flow)
    vacuum_analyze(TABLE)
    return log
