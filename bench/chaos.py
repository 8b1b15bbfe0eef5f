"""The chaos run: the production stack on this machine, commands with retries, SIGKILLs and outages, then every check.

    python -m bench.chaos [--minutes 3] [--seed N] [--broker rabbitmq|redis]          (make chaos)

It runs on infrastructure of its own: a PostgreSQL cluster, a Redis (the cache, persistent as the Redis holding
the best-sellers read model must be) and a broker (a RabbitMQ node by default; `--broker redis` a persistent
redis-server), all private to the run and removed at its end. On them: gunicorn, one Celery worker per queue of
work (relay, projections, sagas, celery) and beat, as in production. It drives a mix of commands (orders with
every payment token, so the fulfilment saga runs, cancellations, registrations, email changes, restocks), each
retried with the same Idempotency-Key until it gets a definite answer, some sent twice at once and some
replayed later. Every few seconds a fault strikes: a random process is killed with SIGKILL and restarted, or
PostgreSQL, Redis or the broker is stopped for a few seconds and started again on the same port. Then it waits
until the system is quiet and checks:
  - every command that got a 2xx has its events (the versions in its X-Consistency-Token) in the log, published;
  - a replayed key answers what it answered the first time;
  - verify_projections finds no drift, nothing is parked or dead;
  - every order settled: every saga completed (confirmed or cancelled), none stuck, and the saga invariants hold
    (nothing reserved for a cancelled order, reserved and sold match the orders, the stock each product's last
    event reports is its initial stock plus the accepted restocks minus the units of its confirmed orders);
  - no effect happened twice (one order or customer per idempotency key, each payment authorized at most once,
    one reservation / confirmation / cancellation event per order).
It prints a summary with how long the system took to converge after the last fault and after the last command,
records it in docs/benchmarks.md, and exits non-zero on any loss or violation.

Saga timeouts are shortened the same way the end-to-end tests shorten them, and so are the thresholds after which
beat redelivers a published event a projection never applied and starts the saga of an order whose OrderPlaced
was lost. On Redis the broker's visibility timeout is 60 s here (CELERY_VISIBILITY_TIMEOUT): a message a killed
worker held comes back after it, so it bounds the time to converge there; RabbitMQ gives it back at once.
"""

import argparse
import itertools
import random
import shlex
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import environment
from bench.client import Answer, Api
from bench.private_services import PrivatePostgres, Service, ThrowawayRedis, private_broker
from bench.processes import BIN, Processes, processes
from bench.report import CHAOS_MARKERS, markdown_table, write_section

STACK_ENV = {
    "CELERY_VISIBILITY_TIMEOUT": "60",  # Redis broker only
    "SAGA_PAYMENT_TIMEOUT_SECONDS": "5",
    "PAYMENT_PROVIDER_TIMEOUT_SECONDS": "0.5",
    "SAGA_LEASE_SECONDS": "3",
    "SAGA_RETRY_BASE_SECONDS": "0.2",
    # Ten attempts must outlast IDEMPOTENCY_CLAIM_SECONDS (30): a worker killed inside a command leaves its claim
    # answering 409 until then (0.2 doubling to 10: ~40 s).
    "SAGA_RETRY_MAX_SECONDS": "10",
    # Lost deliveries (a killed worker's countdown retry) come back from the log sooner than in production.
    "PROJECTION_REDELIVER_AFTER_SECONDS": "30",
    "PROJECTION_REDELIVER_INTERVAL": "10",
    "SAGA_RECONCILE_AFTER_SECONDS": "30",
    "SAGA_RECONCILE_INTERVAL": "10",
}
TOKENS = ["tok_ok"] * 6 + ["tok_declined", "tok_flaky", "tok_flaky", "tok_timeout"]
QUEUES = ("relay", "projections", "sagas", "webhooks", "celery")
# Processes per queue's worker: a saga step waits on PostgreSQL and the payment provider more than on the CPU.
CONCURRENCY = {"projections": 2, "sagas": 4}
TARGETS = [*(f"worker-{queue}" for queue in QUEUES), "beat", "web"]
SERVICES = ["postgresql", "redis", "broker"]
# Every third fault is an outage of a service (rather than a killed process); an outage lasts this long.
OUTAGE_EVERY = 3
OUTAGE_SECONDS = (3.0, 8.0)
RETRY_FOR_SECONDS = 120.0
CONVERGE_WITHIN_SECONDS = 480.0
# Longer than the visibility timeout: a message held by a killed worker comes back after it.
STALLED_AFTER_SECONDS = 150.0


@dataclass
class Sent:
    """One intended effect: a command and its key, with every answer it got."""

    name: str
    body: dict[str, Any]
    key: str
    answers: list[Answer] = field(default_factory=list)
    # (sent, received, answer) on the monotonic clock, for every answer, whichever thread sent it
    timeline: list[tuple[float, float, Answer]] = field(default_factory=list)
    first_ok: Answer | None = None
    rejected: Answer | None = None

    @property
    def resolved(self) -> bool:
        return self.first_ok is not None or self.rejected is not None


def definite_error(answer: Answer) -> bool:
    """A business error (4xx other than in-progress and throttling): nothing was stored, the key is free again."""
    return 400 <= answer.status < 500 and not in_progress(answer) and answer.status != 429


def rejected_after_success(item: "Sent") -> bool:
    """A request sent after the key had answered 2xx got a business error: a stored response was not replayed."""
    first_ok_at = min((received for _, received, answer in item.timeline if answer.ok), default=None)
    return first_ok_at is not None and any(
        sent > first_ok_at and definite_error(answer) for sent, _, answer in item.timeline
    )


def in_progress(answer: Answer) -> bool:
    return (
        answer.status == 409 and isinstance(answer.body, dict) and answer.body.get("code") == "IDEMPOTENCY_IN_PROGRESS"
    )


@dataclass
class Driver:
    api: Api
    rng: random.Random
    stop: threading.Event
    skus: list[str]
    customers: list[str]
    orders: list[str] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    requests: int = 0
    replays: int = 0
    replay_mismatches: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def deliver(self, item: Sent) -> None:
        """Send until a definite answer: 2xx, or a business error (4xx other than in-progress and throttling)."""
        deadline = time.monotonic() + RETRY_FOR_SECONDS
        pause = 0.2
        while time.monotonic() < deadline:
            with self.lock:
                self.requests += 1
            sent = time.monotonic()
            try:
                answer = self.api.command(item.name, item.body, key=item.key, correlation_id=f"chaos-{item.key}")
            except OSError:
                answer = None
            if answer is not None:
                item.answers.append(answer)
                item.timeline.append((sent, time.monotonic(), answer))
                if answer.ok:
                    if item.first_ok is None:
                        item.first_ok = answer
                    else:
                        self.compare(item, answer)
                    return
                if definite_error(answer):
                    item.rejected = answer
                    return
            time.sleep(pause)
            pause = min(pause * 1.5, 2.0)

    def compare(self, item: Sent, answer: Answer) -> None:
        assert item.first_ok is not None
        with self.lock:
            self.replays += 1
        same = answer.status == item.first_ok.status and answer.body == item.first_ok.body
        if not same:
            self.replay_mismatches.append(f"{item.name} {item.key}: {item.first_ok.body} then {answer.body}")

    def record(self, name: str, body: dict[str, Any]) -> Sent:
        item = Sent(name, body, str(uuid.uuid4()))
        with self.lock:
            self.sent.append(item)
        return item

    def next_command(self) -> Sent:
        r = self.rng.random()
        rng = self.rng
        if r < 0.45 or not self.orders:
            lines = [{"sku": sku, "quantity": rng.randint(1, 3)} for sku in rng.sample(self.skus, rng.randint(1, 2))]
            body = {"customer_id": rng.choice(self.customers), "lines": lines, "payment_token": rng.choice(TOKENS)}
            return self.record("place-order", body)
        if r < 0.60:
            return self.record("cancel-order", {"order_id": rng.choice(self.orders[-30:]), "reason": "chaos"})
        if r < 0.75:
            body = {"first_name": "Chaos", "last_name": "Monkey", "email": f"c-{uuid.uuid4().hex}@chaos.example"}
            return self.record("register-customer", body)
        if r < 0.87:
            body = {"customer_id": rng.choice(self.customers), "email": f"m-{uuid.uuid4().hex}@chaos.example"}
            return self.record("change-customer-email", body)
        return self.record("restock-product", {"sku": rng.choice(self.skus), "quantity": rng.randint(1, 5)})

    def after(self, item: Sent) -> None:
        """Learn ids from a success: new orders to cancel, new customers to order for."""
        if item.first_ok is None or not isinstance(item.first_ok.body, dict):
            return
        with self.lock:
            if item.name == "place-order":
                self.orders.append(item.first_ok.body["order_id"])
            elif item.name == "register-customer":
                self.customers.append(item.first_ok.body["customer_id"])

    def loop(self) -> None:
        while not self.stop.is_set():
            roll = self.rng.random()
            done = [s for s in self.sent[-200:] if s.first_ok is not None]
            if roll < 0.08 and done:
                self.deliver(self.rng.choice(done))  # a client retrying long after: must replay
                continue
            item = self.next_command()
            if roll < 0.14:
                twin = threading.Thread(target=self.deliver, args=(item,))  # the same key twice at once
                twin.start()
                self.deliver(item)
                twin.join(RETRY_FOR_SECONDS + 10)
            else:
                self.deliver(item)
            self.after(item)
            time.sleep(self.rng.uniform(0.05, 0.25))


@dataclass
class Faults:
    """Every few seconds one fault, and only one at a time: a SIGKILLed process, or a service stopped a while."""

    group: Processes
    services: dict[str, Service]
    rng: random.Random
    stop: threading.Event
    every: float
    counts: Counter[str] = field(default_factory=Counter)
    log: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # Monotonic time the last fault ended (the process restarted, the service back).
    last_fault_ended: float = 0.0

    def loop(self) -> None:
        services = self.rng.sample(SERVICES, len(SERVICES))
        for number in itertools.count(1):
            if self.stop.wait(self.rng.uniform(0.5 * self.every, 1.5 * self.every)):
                return
            try:
                if number % OUTAGE_EVERY == 0:  # each service in turn, so every run takes each away
                    self.outage(services[(number // OUTAGE_EVERY - 1) % len(services)])
                else:
                    self.kill(self.rng.choice(TARGETS))
            except Exception as error:  # a fault the run could not inflict or undo is a finding, not a crash
                self.errors.append(f"FAULT FAILED: {type(error).__name__}: {error}")
            self.last_fault_ended = time.monotonic()

    def kill(self, target: str) -> None:
        self.group.kill(target)
        self.counts[f"SIGKILL {target}"] += 1
        self.note(f"SIGKILL {target}")
        time.sleep(self.rng.uniform(0.0, 1.5))
        try:
            restart(self.group, target)
        except RuntimeError as error:
            self.errors.append(f"{target}: {error}")
            restart(self.group, target)

    def outage(self, name: str) -> None:
        seconds = self.rng.uniform(*OUTAGE_SECONDS)
        self.note(f"stop {name} for {seconds:.1f}s")
        self.services[name].stop()
        try:
            time.sleep(seconds)
        finally:
            self.services[name].start()
        self.counts[f"{name} stopped"] += 1
        self.note(f"{name} back")

    def note(self, text: str) -> None:
        self.log.append(f"{datetime.now(UTC):%H:%M:%S.%f} {text}")


def restart(group: Processes, target: str) -> None:
    group.restart(target)
    if target.startswith("worker"):
        group.wait_for_worker(target)


def start_stack(group: Processes) -> int:
    """The production processes: gunicorn, one worker per queue of work, beat."""
    port = group.gunicorn("web", workers=2)
    for queue in QUEUES:
        group.worker(f"worker-{queue}", concurrency=CONCURRENCY.get(queue, 1), queues=(queue,))
    group.beat("beat")
    return port


def initial_stock(sku: str) -> int:
    return 15 if int(sku.rsplit("-", 1)[1]) < 4 else 5000  # a few scarce products: some orders fail on stock


def seed(api: Api, rng: random.Random) -> tuple[list[str], list[str]]:
    skus = []
    for i in range(12):
        sku = f"CHAOS-{i:02d}"
        answer = api.command(
            "add-product",
            {"sku": sku, "name": f"Item {i}", "description": "", "price": "4.20", "stock": initial_stock(sku)},
        )
        assert answer.status == 201, answer
        skus.append(sku)
    customers = []
    for i in range(30):
        body = {"first_name": "Seed", "last_name": str(i), "email": f"seed-{i}-{rng.random()}@chaos.example"}
        answer = api.command("register-customer", body)
        assert answer.status == 201, answer
        customers.append(answer.body["customer_id"])
    return skus, customers


# --- quiescence and the checks ------------------------------------------------------------------------


def quiet() -> tuple[bool, str]:
    from outbox_app.models import OutboxEvent
    from queries_app.lag import lag
    from queries_app.models import ParkedEvent
    from queries_app.projections import PROJECTIONS
    from sagas_app.models import Saga

    pending = OutboxEvent.objects.pending().count()
    active = Saga.objects.filter(status__in=["running", "compensating"]).count()
    behind = {p.name: lag(p).events_behind for p in PROJECTIONS}
    parked = ParkedEvent.objects.count()
    state = f"outbox pending {pending}, active sagas {active}, projections behind {behind}, parked {parked}"
    return pending == 0 and active == 0 and not any(behind.values()), state


def wait_for_quiet(timeout: float, stalled_after: float) -> tuple[bool, str, float]:
    """Quiet for two seconds of checks: (converged, the last state, when the quiet began on the monotonic clock).

    Gives up at the timeout, or when nothing has moved for `stalled_after`.
    """
    started = time.monotonic()
    calm_since: float | None = None
    state, changed_at = "", started
    while time.monotonic() - started < timeout:
        checked_at = time.monotonic()
        ok, now = quiet()
        if now != state:
            state, changed_at = now, time.monotonic()
        calm_since = (calm_since or checked_at) if ok else None
        if calm_since is not None and time.monotonic() - calm_since >= 2.0:
            return True, state, calm_since
        if time.monotonic() - changed_at > stalled_after:
            return False, f"stalled for {stalled_after:.0f}s: {state}", time.monotonic()
        time.sleep(1.0)
    return False, state, time.monotonic()


def check_events(sent: list[Sent]) -> list[str]:
    """Every 2xx command's written versions are in the log, published."""
    from api_common.consistency import decode_token
    from outbox_app.models import OutboxEvent

    problems = []
    for item in sent:
        if item.first_ok is None:
            continue
        token = item.first_ok.headers.get("x-consistency-token")
        versions = decode_token(token) if token else []
        if versions is None:
            problems.append(f"TOKEN: {item.name} {item.key} answered a token this service cannot read")
        for version in versions or []:
            event = OutboxEvent.objects.filter(
                aggregate_type=version.aggregate_type,
                aggregate_id=version.aggregate_id,
                aggregate_version=version.version,
            ).first()
            if event is None:
                problems.append(f"LOST: {item.name} {item.key} wrote {version} but the log lacks it")
            elif event.published_at is None:
                problems.append(f"UNPUBLISHED: {event}")
    return problems


def check_projections(world: environment.World) -> list[str]:
    from django.db.models import Count

    from outbox_app.models import OutboxEvent
    from queries_app.models import ParkedEvent
    from queries_app.projections import PROJECTIONS

    result = subprocess.run(
        [str(BIN / "python"), "manage.py", "verify_projections"],
        cwd=environment.ROOT,
        env=world.env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    problems = [] if result.returncode == 0 else [f"DRIFT: {result.stdout[-2000:]}{result.stderr[-1000:]}"]
    problems += [f"DEAD: {e}" for e in OutboxEvent.objects.dead()[:20]]
    parked = ParkedEvent.objects.values_list("projection", "reason").annotate(n=Count("pk")).order_by()
    problems += [f"PARKED: {n} event(s) in {projection} ({reason})" for projection, reason, n in parked]
    for projection in PROJECTIONS:
        lost = undelivered(projection.name, projection.follows)
        if lost:
            sample = ", ".join(f"{t}/{i} v{v}" for t, i, v in lost[:8])
            problems.append(
                f"LOST DELIVERY: {len(lost)} published event(s) {projection.name} neither applied nor parked: {sample}"
            )
    return problems


def undelivered(name: str, follows: tuple[str, ...]) -> list[tuple[str, str, int]]:
    """Published events a projection follows that are above its position and not parked: no copy left anywhere."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT e.aggregate_type, e.aggregate_id, e.aggregate_version FROM outbox_app_outboxevent e "
            "LEFT JOIN read_aggregate_position p ON p.projection = %s AND p.aggregate_type = e.aggregate_type "
            "AND p.aggregate_id = e.aggregate_id "
            "WHERE e.aggregate_type = ANY(%s) AND e.published_at IS NOT NULL "
            "AND e.aggregate_version > COALESCE(p.version, 0) AND NOT EXISTS (SELECT 1 FROM read_parked_event k "
            "WHERE k.projection = %s AND k.event_id = e.event_id) ORDER BY 1, 2, 3",
            [name, list(follows), name],
        )
        return [(t, i, int(v)) for t, i, v in cursor.fetchall()]


def check_sagas() -> tuple[list[str], Counter[str]]:
    from django.core.cache import cache

    from commands_app.models import OrderRecord, ProductRecord
    from commands_app.payments.fake import FakePaymentProvider
    from outbox_app.models import OutboxEvent
    from sagas_app.models import Saga

    problems = []
    outcomes: Counter[str] = Counter()
    for saga in Saga.objects.all():
        outcomes[f"{saga.status} {saga.outcome} {saga.reason}".strip()] += 1
        if saga.status != "completed":
            problems.append(f"SAGA NOT COMPLETED: {saga} ({saga.last_error[:200]})")
    provider = FakePaymentProvider(cache=cache, timeout_seconds=0)
    held: Counter[str] = Counter()
    sold: Counter[str] = Counter()
    orders = list(OrderRecord.objects.all())
    if Saga.objects.count() != len(orders):
        problems.append(f"SAGAS: {Saga.objects.count()} sagas for {len(orders)} orders")
    for order in orders:
        authorizations = provider.authorizations(order.order_id)
        if len(authorizations) > 1:
            problems.append(f"TWICE: order {order.order_id} has {len(authorizations)} authorizations")
        live = [a.authorization_id for a in authorizations if not a.voided]
        if order.status == "confirmed" and live != [order.authorization_id]:
            problems.append(f"PAYMENT: confirmed order {order.order_id} holds {live}, records {order.authorization_id}")
        if order.status != "confirmed" and live:
            problems.append(f"PAYMENT: {order.status} order {order.order_id} holds authorization {live}")
        if order.status == "cancelled" and order.reserved:
            problems.append(f"STOCK: cancelled order {order.order_id} still holds its reservation")
        for line in order.lines:
            if order.reserved and order.status != "confirmed":
                held[line["sku"]] += line["quantity"]
            if order.status == "confirmed":
                sold[line["sku"]] += line["quantity"]
    for product in ProductRecord.objects.all():
        if (product.reserved, product.sold) != (held[product.sku], sold[product.sku]):
            problems.append(
                f"STOCK: {product.sku} reserved/sold {product.reserved}/{product.sold}, "
                f"orders say {held[product.sku]}/{sold[product.sku]}"
            )
        latest = OutboxEvent.objects.filter(aggregate_type="Product", aggregate_id=product.sku)
        event = latest.order_by("-aggregate_version").first()
        available = product.stock - product.reserved - product.sold
        if event is None or event.payload.get("available") != available:
            problems.append(
                f"STOCK: {product.sku} available {available}, its last event says {event and event.payload}"
            )
    return problems, outcomes


def check_stock(sent: list[Sent]) -> list[str]:
    """Every order settled, each product's stock is its initial stock plus the accepted restocks minus the units of
    its confirmed orders, and nothing stays reserved."""
    from commands_app.models import OrderRecord, ProductRecord

    restocked: Counter[str] = Counter()
    for item in sent:
        if item.name == "restock-product" and item.first_ok is not None:
            restocked[item.body["sku"]] += item.body["quantity"]
    sold: Counter[str] = Counter()
    for order in OrderRecord.objects.filter(status="confirmed"):
        for line in order.lines:
            sold[line["sku"]] += line["quantity"]
    problems = []
    for product in ProductRecord.objects.all():
        expected = initial_stock(product.sku) + restocked[product.sku] - sold[product.sku]
        available = product.stock - product.reserved - product.sold
        if product.reserved or available != expected:
            problems.append(
                f"STOCK: {product.sku} available {available} (reserved {product.reserved}), expected {expected} = "
                f"{initial_stock(product.sku)} + {restocked[product.sku]} restocked - {sold[product.sku]} sold"
            )
    return problems


def check_once(sent: list[Sent], client_id: str) -> list[str]:
    """No effect twice: one row per idempotency key, one reservation/confirmation/cancellation per order."""
    from django.db.models import Count

    from commands_app.models import CustomerRecord, IdempotencyRecord, OrderRecord
    from outbox_app.models import OutboxEvent

    problems = []
    # Keys that keep a success (a key keeps a business error too, in response_error).
    records = IdempotencyRecord.objects.filter(
        client_id=client_id, status_code__isnull=False, response_error__isnull=True
    )
    for command_type, model in (("PlaceOrder", OrderRecord), ("RegisterCustomer", CustomerRecord)):
        stored = records.filter(command_type=command_type).count()
        rows = model.objects.count()
        if rows != stored:
            problems.append(f"TWICE: {rows} {model.__name__} rows for {stored} successful {command_type} keys")
    by_key: dict[str, set[str]] = {}
    for item in sent:
        if item.name == "place-order":
            ids = {a.body["order_id"] for a in item.answers if a.ok and isinstance(a.body, dict)}
            by_key.setdefault(item.key, set()).update(ids)
    problems += [f"TWICE: key {key} answered orders {ids}" for key, ids in by_key.items() if len(ids) > 1]
    once_per_order = ("OrderConfirmed", "OrderCancelled", "PaymentAuthorized", "OrderPlaced")
    repeated = (
        OutboxEvent.objects.filter(event_type__in=once_per_order)
        .values("event_type", "aggregate_id")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
    )
    problems += [f"TWICE: {r['event_type']} x{r['n']} for order {r['aggregate_id']}" for r in repeated]
    per_line = (
        OutboxEvent.objects.filter(event_type__in=("InventoryReserved", "InventoryReleased"))
        .values("event_type", "aggregate_id", "payload__order_id")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
    )
    problems += [f"TWICE: {r['event_type']} x{r['n']} {r['aggregate_id']} {r['payload__order_id']}" for r in per_line]
    return problems


# --- the run -------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="how long to drive commands and faults (default 3)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: from the clock)")
    parser.add_argument("--fault-every", type=float, default=6.0, help="mean seconds between faults (default 6)")
    parser.add_argument("--drivers", type=int, default=2, help="client threads (default 2)")
    parser.add_argument("--broker", choices=["rabbitmq", "redis"], default="rabbitmq", help="default: rabbitmq")
    parser.add_argument("--output", type=Path, default=environment.ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards (kept anyway on failure)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    # A SIGTERM at any point unwinds like Ctrl-C: the private servers are stopped and removed on the way out.
    signal.signal(signal.SIGTERM, _interrupt)
    seed_value = args.seed if args.seed is not None else int(time.time())
    rng = random.Random(seed_value)
    started_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print("chaos: starting a PostgreSQL cluster, a Redis and a broker of the run's own", flush=True)
    with (
        PrivatePostgres.running() as postgresql,
        ThrowawayRedis.running(durable=True) as cache,
        private_broker(args.broker) as broker,
    ):
        world = environment.new_world(
            "cqrs_chaos",
            cache_db=0,
            broker_db=0,
            pg_server=f"postgres://postgres@127.0.0.1:{postgresql.port}",
            redis_server=f"redis://127.0.0.1:{cache.port}",
            broker=broker.url,
        )
        environment.create_database(world)
        services: dict[str, Service] = {"postgresql": postgresql, "redis": cache, "broker": broker}
        status = 2
        try:
            status = run(world, services, args, rng, seed_value, started_at)
            return status
        finally:
            if args.keep or status != 0:
                postgresql.keep = True
                print(
                    f"kept the PostgreSQL cluster {postgresql.name} ({postgresql.url(world.database)}; "
                    f"`pg_dropcluster --stop 15 {postgresql.name}` removes it) and {world.workdir} for a look"
                )


def run(
    world: environment.World,
    services: dict[str, Service],
    args: argparse.Namespace,
    rng: random.Random,
    seed_value: int,
    started_at: str,
) -> int:
    environment.setup_django(world, log_to=world.workdir / "logs" / "chaos.log")
    from django.db import connections

    from bench.context import api_token
    from outbox_app.models import OutboxEvent

    machine = environment.machine(world)
    token = api_token("chaos", ["read", "write", "catalog"])
    from api_common.models import ApiClient

    client_id = str(ApiClient.objects.get(name="chaos").id)
    say = _printer()
    with processes(world, **STACK_ENV) as group:
        port = start_stack(group)
        api = Api(port, token, timeout=15)
        skus, customers = seed(api, rng)
        stop = threading.Event()
        drivers = [Driver(api, random.Random(rng.random()), stop, skus, customers) for _ in range(max(1, args.drivers))]
        faults = Faults(group, services, random.Random(rng.random()), stop, args.fault_every)
        threads = [threading.Thread(target=d.loop, daemon=True) for d in drivers]
        threads.append(threading.Thread(target=faults.loop, daemon=True))
        say(
            f"chaos: seed {seed_value}, {args.minutes} min on {args.broker}, a fault every ~{args.fault_every}s; "
            f"logs in {world.workdir}"
        )
        for thread in threads:
            thread.start()
        end = time.monotonic() + args.minutes * 60
        while time.monotonic() < end:
            time.sleep(10)
            sent = sum(len(d.sent) for d in drivers)
            say(f"  {sent} commands, {sum(d.requests for d in drivers)} requests, faults {dict(faults.counts)}")
        stop.set()
        for thread in threads:
            thread.join(RETRY_FOR_SECONDS + 60)
        driving_ended = time.monotonic()
        for name in TARGETS:
            if group.running.get(name) is None or group.running[name].poll() is not None:
                restart(group, name)
        say("chaos: driving stopped; waiting for the system to settle")
        connections.close_all()  # this process's own sessions may have been cut by a PostgreSQL outage
        converged, state, quiet_since = wait_for_quiet(CONVERGE_WITHIN_SECONDS, STALLED_AFTER_SECONDS)
        after_command = quiet_since - driving_ended
        after_fault = quiet_since - faults.last_fault_ended
        sent_items = [item for d in drivers for item in d.sent]
        problems = [] if converged else [f"NOT CONVERGED: {state}"]
        problems += [f"UNRESOLVED: {s.name} {s.key}" for s in sent_items if not s.resolved]
        problems += [f"REPLAY DIFFERS: {m}" for d in drivers for m in d.replay_mismatches]
        problems += [
            f"REPLAY DIFFERS: {s.name} {s.key} answered {[(a.status, a.body) for a in s.answers]}"
            for s in sent_items
            if rejected_after_success(s)
        ]
        problems += faults.errors
        problems += check_events(sent_items)
        problems += check_projections(world)
        saga_problems, outcomes = check_sagas()
        problems += saga_problems
        problems += check_stock(sent_items)
        problems += check_once(sent_items, client_id)
        events = OutboxEvent.objects.count()
        answers = Counter(a.status for item in sent_items for a in item.answers)
    kills = {k.removeprefix("SIGKILL "): n for k, n in faults.counts.items() if k.startswith("SIGKILL ")}
    outages = {k.removesuffix(" stopped"): n for k, n in faults.counts.items() if k.endswith(" stopped")}
    summary = {
        "seed": str(seed_value),
        "broker": args.broker,
        "driving": f"{args.minutes} min, {len(drivers)} client threads",
        "commands (distinct keys)": str(len(sent_items)),
        "requests sent (with retries)": str(sum(d.requests for d in drivers)),
        "answers by status (every attempt; 503: a service was away, the client retried)": ", ".join(
            f"{status} {n}" for status, n in sorted(answers.items())
        ),
        "commands answered 2xx / only business errors / both (a failed attempt retried, or a violation below)": (
            f"{sum(s.first_ok is not None for s in sent_items)} / "
            f"{sum(s.first_ok is None and s.rejected is not None for s in sent_items)} / "
            f"{sum(s.first_ok is not None and s.rejected is not None for s in sent_items)}"
        ),
        "replays checked (same key, later)": str(sum(d.replays for d in drivers)),
        "by command": ", ".join(f"{k} {v}" for k, v in sorted(Counter(s.name for s in sent_items).items())),
        "kills (SIGKILL + restart)": f"{sum(kills.values())}: "
        + ", ".join(f"{k} {n}" for k, n in sorted(kills.items())),
        "outages (stopped 3-8 s, started again)": f"{sum(outages.values())}: "
        + ", ".join(f"{k} {n}" for k, n in sorted(outages.items())),
        "events in the log": str(events),
        "sagas": ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items())),
        "converged after the last fault / the last command": (
            f"{after_fault:.1f} s / {after_command:.1f} s" if converged else "did not converge"
        ),
        "violations": str(len(problems)),
    }
    say("\n" + "\n".join(f"{k}: {v}" for k, v in summary.items()))
    for problem in problems[:50]:
        say(f"  {problem}")
    say("chaos: " + ("FAILED" if problems else "every check passed"))
    (world.workdir / "logs" / "faults.log").write_text("\n".join(faults.log) + "\n")
    record(args.output, args.broker, summary, problems, machine, started_at, argv_text(args))
    return 1 if problems else 0


def argv_text(args: argparse.Namespace) -> str:
    return "python -m bench.chaos " + shlex.join(sys.argv[1:])


def record(
    path: Path,
    broker: str,
    summary: dict[str, str],
    problems: list[str],
    machine: dict[str, str],
    started: str,
    command: str,
) -> None:
    lines = [
        f"## Chaos run on {'RabbitMQ' if broker == 'rabbitmq' else 'Redis'}: `{command.strip()}`, {started}",
        "",
        "gunicorn (2 workers), one Celery worker per queue (relay 1 process, projections 2, sagas 4, webhooks 1, "
        "celery 1) and "
        "beat, on a "
        "PostgreSQL, a Redis and a broker of the run's own; every few seconds a fault: a random process SIGKILLed "
        "and restarted, or PostgreSQL, Redis or the broker stopped for 3-8 s and started again, while clients send "
        "commands, retrying each with its Idempotency-Key until a definite answer. Checks in bench/chaos.py's "
        "docstring.",
        "",
        markdown_table(["", ""], [[k, v] for k, v in summary.items()]),
        "",
        f"Machine: {machine.get('cpus (nproc)')} CPUs, {machine.get('memory')}, PostgreSQL "
        f"{machine.get('postgresql')}, Redis {machine.get('redis')}, commit {machine.get('git commit')}.",
        "",
        "Result: " + ("**FAILED**" if problems else "**every check passed**"),
    ]
    if problems:
        lines += ["", "```", *problems[:30], "```"]
    start, end = CHAOS_MARKERS[broker]
    write_section(path, start, end, "\n".join(lines))


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _printer() -> Callable[[str], None]:
    def say(text: str) -> None:
        print(text, flush=True)

    return say


if __name__ == "__main__":
    sys.exit(main())
