"""Clients for the tests that take infrastructure away: an HTTP client of the API, and client threads that keep
sending commands through an outage, as a well-behaved API client does.

Each command is sent with its own Idempotency-Key and sent again, with the same key and body, until a definite
answer: 2xx, or a business error (a 4xx other than 409 IDEMPOTENCY_IN_PROGRESS and 429). A 503, a 5xx or a
connection that failed is retried after a short pause. Every answer is kept, so a test can say exactly what
the clients saw.
"""

import http.client
import json
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psycopg

# The saga's timeouts shortened as in the other stack tests; nothing else differs from production.
FAST_SAGAS = {
    "SAGA_PAYMENT_TIMEOUT_SECONDS": "5",
    "PAYMENT_PROVIDER_TIMEOUT_SECONDS": "0.5",
    "SAGA_LEASE_SECONDS": "3",
    "SAGA_RETRY_BASE_SECONDS": "0.2",
    "SAGA_RETRY_MAX_SECONDS": "2",
}


@dataclass(frozen=True)
class Answer:
    status: int  # 0: no answer (the connection failed)
    headers: dict[str, str]
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def definite(self) -> bool:
        if self.ok:
            return True
        retry_later = self.status == 429 or (
            self.status == 409 and isinstance(self.body, dict) and self.body.get("code") == "IDEMPOTENCY_IN_PROGRESS"
        )
        return 400 <= self.status < 500 and not retry_later


@dataclass
class Api:
    port: int
    token: str
    timeout: float = 15.0

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Answer:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        all_headers = {"Authorization": f"Token {self.token}", **(headers or {})}
        payload = None if body is None else json.dumps(body)
        if payload is not None:
            all_headers["Content-Type"] = "application/json"
        try:
            connection.request(method, path, body=payload, headers=all_headers)
            response = connection.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            return Answer(0, {}, None)
        finally:
            connection.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, parsed)

    def command(self, name: str, body: Any, *, key: str | None = None) -> Answer:
        return self.request("POST", f"/api/commands/{name}", body, {"Idempotency-Key": key or str(uuid.uuid4())})

    def get(self, path: str, **headers: str) -> Answer:
        return self.request("GET", path, headers=headers)

    def until_ok(self, name: str, body: Any, *, timeout: float = 60.0) -> Answer:
        """Send a command (same key every time) until a definite answer, which must be a success."""
        key = str(uuid.uuid4())
        deadline = time.monotonic() + timeout
        while True:
            answer = self.command(name, body, key=key)
            if answer.definite or time.monotonic() > deadline:
                assert answer.ok, (name, answer)
                return answer
            time.sleep(0.2)


@dataclass
class Sent:
    """One intended command: its key and body, and every answer it got."""

    name: str
    body: dict[str, Any]
    key: str = field(default_factory=lambda: str(uuid.uuid4()))
    answers: list[Answer] = field(default_factory=list)

    @property
    def final(self) -> Answer | None:
        return self.answers[-1] if self.answers and self.answers[-1].definite else None

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
            if answer.definite:
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
                "SELECT o.order_id FROM read_order o JOIN saga s ON s.order_id = o.order_id "
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
