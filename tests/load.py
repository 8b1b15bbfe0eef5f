"""Clients for the tests that take infrastructure away: an HTTP client of the API, and client threads that keep
sending commands through an outage, as a well-behaved API client does.

Each command is sent with its own Idempotency-Key and sent again, with the same key and body, until a definite
answer: 2xx, or a business error (a 4xx other than 409 IDEMPOTENCY_IN_PROGRESS and 429). A 503, a 5xx or a
connection that failed is retried after a short pause. Every answer is kept, so a test can say exactly what
the clients saw.
"""

import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psycopg

from bench import client, context
from bench.client import Answer
from bench.private_services import Service

# The saga's timeouts shortened as in the other stack tests; nothing else differs from production.
FAST_SAGAS = {
    "SAGA_PAYMENT_TIMEOUT_SECONDS": "5",
    "PAYMENT_PROVIDER_TIMEOUT_SECONDS": "0.5",
    "SAGA_LEASE_SECONDS": "3",
    "SAGA_RETRY_BASE_SECONDS": "0.2",
    "SAGA_RETRY_MAX_SECONDS": "2",
}


def definite(answer: Answer) -> bool:
    """A success, or a business error: a 4xx other than 409 IDEMPOTENCY_IN_PROGRESS and 429."""
    if answer.ok:
        return True
    retry_later = answer.status == 429 or (
        answer.status == 409 and isinstance(answer.body, dict) and answer.body.get("code") == "IDEMPOTENCY_IN_PROGRESS"
    )
    return 400 <= answer.status < 500 and not retry_later


NO_ANSWER = Answer(0, {}, None)


class Api(client.Api):
    """The bench's API client, for which a connection that failed is an answer too (status 0), not an error."""

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Answer:
        try:
            return super().request(method, path, body, headers)
        except OSError:
            return NO_ANSWER

    def get(self, path: str, **headers: str) -> Answer:
        return self.request("GET", path, headers=headers)

    def until_ok(self, name: str, body: Any, *, timeout: float = 60.0) -> Answer:
        """Send a command (same key every time) until a definite answer, which must be a success."""
        key = str(uuid.uuid4())
        deadline = time.monotonic() + timeout
        while True:
            answer = self.command(name, body, key=key)
            if definite(answer) or time.monotonic() > deadline:
                assert answer.ok, (name, answer)
                return answer
            time.sleep(0.2)


def api_token() -> str:
    """A new API client with every scope (and no rate limit a test reaches); its token."""
    return context.api_token(f"outage-{uuid.uuid4().hex[:8]}", ["read", "write", "catalog"])


@dataclass
class Sent:
    """One intended command: its key and body, and every answer it got."""

    name: str
    body: dict[str, Any]
    key: str = field(default_factory=lambda: str(uuid.uuid4()))
    answers: list[Answer] = field(default_factory=list)

    @property
    def final(self) -> Answer | None:
        return self.answers[-1] if self.answers and definite(self.answers[-1]) else None

    @property
    def accepted(self) -> bool:
        return self.final is not None and self.final.ok


@dataclass
class Load:
    """Client threads registering customers and placing orders (the saga) until stopped."""

    api: Api
    skus: list[str]
    customers: list[str]
    threads: int = 2
    # Commands per second per thread, at most: a rate one saga worker keeps up with on a busy 2-core machine.
    rate: float = 4.0
    orders_share: float = 0.5
    tokens: tuple[str, ...] = ("tok_ok", "tok_ok", "tok_ok", "tok_declined")
    retry_for: float = 90.0
    sent: list[Sent] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> "Load":
        self._workers = [threading.Thread(target=self._loop, args=(seed,), daemon=True) for seed in range(self.threads)]
        for worker in self._workers:
            worker.start()
        return self

    def stop(self) -> None:
        """Stop sending new commands; those under way are retried until they have a definite answer."""
        self._stop.set()
        for worker in self._workers:
            worker.join(self.retry_for + 30)

    def _loop(self, seed: int) -> None:
        rng = random.Random(seed)
        while not self._stop.is_set():
            if rng.random() < self.orders_share:
                lines = [{"sku": rng.choice(self.skus), "quantity": rng.randint(1, 3)}]
                body = {
                    "customer_id": rng.choice(self.customers),
                    "lines": lines,
                    "payment_token": rng.choice(self.tokens),
                }
                item = Sent("place-order", body)
            else:
                item = Sent(
                    "register-customer",
                    {"first_name": "Load", "last_name": "Test", "email": f"{uuid.uuid4().hex}@x.org"},
                )
            with self._lock:
                self.sent.append(item)
            started = time.monotonic()
            self._deliver(item)
            time.sleep(max(0.0, 1 / self.rate - (time.monotonic() - started)))

    def _deliver(self, item: Sent) -> None:
        deadline = time.monotonic() + self.retry_for
        pause = 0.1
        while time.monotonic() < deadline:
            answer = self.api.command(item.name, item.body, key=item.key)
            item.answers.append(answer)
            if definite(answer):
                return
            time.sleep(pause)
            pause = min(pause * 1.5, 1.0)

    def statuses(self) -> Counter[int]:
        return Counter(answer.status for item in self.sent for answer in item.answers)

    def accepted(self, name: str) -> list[Sent]:
        return [item for item in self.sent if item.name == name and item.accepted]

    def unresolved(self) -> list[Sent]:
        return [item for item in self.sent if item.final is None]


@dataclass(frozen=True)
class Behind:
    """What the read model and the sagas still lack of what the clients were told succeeded."""

    customers: list[str]
    orders: list[str]

    def __bool__(self) -> bool:
        return bool(self.customers or self.orders)

    def __str__(self) -> str:
        return f"{len(self.customers)} customer(s) not in the read model, {len(self.orders)} order(s) not settled"


def behind(database_url: str, load: Load) -> Behind:
    """Accepted registrations missing from the customer view; accepted orders whose saga has not completed or
    whose order view does not show it confirmed or cancelled."""
    customers = [item.final.body["customer_id"] for item in load.accepted("register-customer") if item.final]
    orders = [item.final.body["order_id"] for item in load.accepted("place-order") if item.final]
    with psycopg.connect(database_url, autocommit=True) as connection:
        projected = {
            str(row[0])
            for row in connection.execute(
                "SELECT customer_id FROM read_customer WHERE version >= 1 AND customer_id = ANY(%s::uuid[])",
                [customers],
            )
        }
        settled = {
            str(row[0])
            for row in connection.execute(
                "SELECT o.order_id FROM read_order o JOIN saga s ON s.saga_type = 'fulfilment' "
                "AND s.correlation_id = o.order_id::text "
                "WHERE o.order_id = ANY(%s::uuid[]) AND o.status IN ('confirmed', 'cancelled') "
                "AND s.status = 'completed'",
                [orders],
            )
        }
    return Behind([c for c in customers if c not in projected], [o for o in orders if o not in settled])


def wait_converged(database_url: str, load: Load, *, within: float) -> float:
    """Seconds until nothing is behind; fails after `within` seconds, saying what is still missing."""
    started = time.monotonic()
    while True:
        missing = behind(database_url, load)
        elapsed = time.monotonic() - started
        if not missing:
            return elapsed
        assert elapsed < within, f"not converged {within:.0f}s after the outage: {missing}"
        time.sleep(0.25)


def seed(api: Api) -> tuple[list[str], list[str]]:
    skus = []
    for i in range(3):
        sku = f"OUTAGE-{uuid.uuid4().hex[:6]}-{i}"
        api.until_ok(
            "add-product", {"sku": sku, "name": f"Item {i}", "description": "", "price": "3.50", "stock": 9000}
        )
        skus.append(sku)
    customers = [
        api.until_ok(
            "register-customer", {"first_name": "Seed", "last_name": str(i), "email": f"{uuid.uuid4().hex}@x.org"}
        ).body["customer_id"]
        for i in range(4)
    ]
    return skus, customers


def outage_under_load(load: Load, service: Service, *, seconds: float = 5.0) -> float:
    """Start the load; after 4 s stop the service for `seconds` and start it again; stop the load 3 s after its
    return. Returns when the service was back (time.monotonic())."""
    load.start()
    time.sleep(4)
    service.stop()
    time.sleep(seconds)
    service.start()
    back = time.monotonic()
    time.sleep(3)
    load.stop()
    return back
