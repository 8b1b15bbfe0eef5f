"""The relay on the real stack: PostgreSQL, a Redis broker, relays as separate processes.

Relay processes publish to a private redis-server (bench.private_services.ThrowawayRedis), which the tests stop,
hang and restart without touching the shared Redis. What reached the bus is read back from the broker's queue lists.
"""

import base64
import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
import redis
from celery import current_app
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from kombu import Exchange, Queue

import sqlkit
from bench.private_services import PrivateRabbitMQ, ThrowawayRedis
from config.broker import task_queues
from outbox_app import outbox, registry
from outbox_app import relay as outbox_relay
from outbox_app.bus import BrokerUnavailable, bus_publisher
from outbox_app.models import OutboxEvent
from outbox_app.operations import requeue_dead
from outbox_app.outbox import NUDGE_KEY, NewEvent, append, send_nudge
from outbox_app.pacing import RELAYED_KEY, relayed_last_second
from outbox_app.relay import RelayReport, relay_once, relay_until_drained
from tests.conftest import command, eventually
from tests.stack import ROOT
from tests.streams import OrderStream, line, write_to_log

PROBE = "OutboxProbeHappened"
PROBE_TASKS = ["tests.outbox.probe", "tests.outbox.audit"]
PROJECT_EVENTS = "queries_app.project_events"

# A relay process as manage.py runs it, plus the subscribers a consuming app would add in its ready().
RELAY_WITH_SUBSCRIBERS = """
import json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django
django.setup()
from django.core.management import call_command
from outbox_app import registry
from outbox_app import relay as outbox_relay
for event_type, tasks in json.loads(os.environ["TEST_OUTBOX_SUBSCRIPTIONS"]).items():
    for task in tasks:
        registry.subscribe(event_type, task)
call_command("relay_outbox", *sys.argv[1:])
"""


@dataclass
class RelayProcess:
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_output(self, text: str, timeout: float = 30) -> None:
        eventually(lambda: text in self.output() or self.process.poll() is not None, timeout=timeout)
        assert text in self.output(), self.output()

    def wait(self, timeout: float = 60) -> int:
        return self.process.wait(timeout=timeout)

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout=20)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)

    def published_in_total(self) -> int:
        match = re.search(r"published (\d+) in total", self.output())
        assert match, self.output()
        return int(match.group(1))


@pytest.fixture
def relays(stack_env: dict[str, str], transactional_db: Any, tmp_path: Path) -> Iterator[Callable[..., RelayProcess]]:
    """Start `relay_outbox` processes on a given broker; every one still running is killed at the end."""
    started: list[RelayProcess] = []

    def start(*args: str, broker: ThrowawayRedis, env: dict[str, str] | None = None) -> RelayProcess:
        log = tmp_path / f"relay-{len(started)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-c", RELAY_WITH_SUBSCRIBERS, *args],
                cwd=ROOT,
                env={
                    **stack_env,
                    "CELERY_BROKER_URL": broker.url,
                    "TEST_OUTBOX_SUBSCRIPTIONS": json.dumps({PROBE: PROBE_TASKS}),
                    **(env or {}),
                },
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        relay = RelayProcess(process, log)
        started.append(relay)
        return relay

    yield start
    for relay in started:
        if relay.process.poll() is None:
            relay.kill()


@pytest.fixture
def broker() -> Iterator[ThrowawayRedis]:
    with ThrowawayRedis.running() as server:
        yield server


@pytest.fixture
def probe_subscribers() -> Iterator[None]:
    """The probe tasks subscribed in this process too, for relays run in-process."""
    for task in PROBE_TASKS:
        registry.subscribe(PROBE, task)
    yield
    for task in PROBE_TASKS:
        registry.unsubscribe(PROBE, task)


def write_probe_events(*, aggregates: int, versions: int, prefix: str) -> list[UUID]:
    """Events for many aggregates, committed in one transaction, versions interleaved across aggregates."""
    events = [
        NewEvent(
            event_type=PROBE,
            aggregate_type="Probe",
            aggregate_id=f"{prefix}-{aggregate}",
            aggregate_version=version,
            payload={"aggregate": aggregate, "version": version},
        )
        for version in range(1, versions + 1)
        for aggregate in range(aggregates)
    ]
    with transaction.atomic():
        return append(events)


def unpublished(event_ids: list[UUID]) -> int:
    return OutboxEvent.objects.filter(event_id__in=event_ids, published_at__isnull=True).count()


def claimed_by_someone_else(event_ids: list[UUID]) -> bool:
    """Whether another transaction holds row locks on some of these unpublished events (a relay's claim)."""
    with transaction.atomic():
        pending = OutboxEvent.objects.filter(event_id__in=event_ids, published_at__isnull=True)
        lockable = len(pending.select_for_update(skip_locked=True).values_list("pk", flat=True))
        return lockable < pending.count()


def bus_messages(client: redis.Redis, task_names: list[str]) -> list[tuple[str, list[dict[str, Any]]]]:
    """(task, envelopes) of every message in the work queues for these tasks, oldest first in each queue.

    Celery's Redis transport LPUSHes a JSON message whose body is base64 JSON [args, kwargs, embed] to the list
    named after the queue its task is routed to; workers BRPOP, so the list holds the newest message first.
    """
    messages = []
    raws = [raw for queue in settings.WORK_QUEUES for raw in reversed(client.lrange(queue, 0, -1))]
    for raw in raws:
        message = json.loads(raw)
        if message["headers"]["task"] in task_names:
            args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
            messages.append((message["headers"]["task"], args[0]))
    return messages


def first_arrivals(messages: list[tuple[str, list[dict[str, Any]]]], task_name: str) -> list[dict[str, Any]]:
    seen: set[str] = set()
    arrivals = []
    for task, envelopes in messages:
        for envelope in envelopes:
            if task == task_name and envelope["event_id"] not in seen:
                seen.add(envelope["event_id"])
                arrivals.append(envelope)
    return arrivals


def versions_by_aggregate(envelopes: list[dict[str, Any]]) -> dict[str, list[int]]:
    versions: dict[str, list[int]] = defaultdict(list)
    for envelope in envelopes:
        versions[envelope["aggregate_id"]].append(envelope["aggregate_version"])
    return versions


@contextmanager
def web_broker(url: str) -> Iterator[None]:
    """Point what this process (the web tier of the test) sends, the nudges, at another broker, with the queues
    that broker wants (the suite's own broker may be RabbitMQ, these are Redis)."""
    use_broker(url, write_url=url)
    cache.delete(NUDGE_KEY)  # so the first commit does nudge, through that broker
    try:
        yield
    finally:
        use_broker(settings.CELERY_BROKER_URL, write_url=None)


def use_broker(url: str, *, write_url: str | None) -> None:
    reconfigure_celery(broker_write_url=write_url, task_queues=task_queues(url))


def reconfigure_celery(**conf: Any) -> None:
    current_app.conf.update(**conf)
    vars(current_app).pop("amqp", None)  # Celery caches the queues and the router built from them


pytestmark = [pytest.mark.stack]


@pytest.mark.django_db(transaction=True)
def test_a_relay_killed_in_the_middle_of_a_batch_loses_no_event(relays, broker):
    # given: a relay that has published a first backlog
    relay = relays("--loop", "--interval", "0.05", "--batch-size", "25", broker=broker)
    first = write_probe_events(aggregates=20, versions=5, prefix="first")
    eventually(lambda: unpublished(first) == 0, timeout=30)
    # and the broker hangs as a second backlog arrives: the relay claims a batch and is stuck publishing it
    broker.hang()
    second = write_probe_events(aggregates=20, versions=5, prefix="second")
    eventually(lambda: claimed_by_someone_else(second), timeout=10)

    # when
    relay.kill()
    broker.resume()

    # then: the claim died with the process and nothing of the batch was marked published
    eventually(lambda: not claimed_by_someone_else(second), timeout=10)
    assert unpublished(second) == len(second)
    # and a new relay publishes everything
    assert relays("--batch-size", "25", broker=broker).wait() == 0
    assert unpublished(first + second) == 0
    messages = bus_messages(broker.client(), PROBE_TASKS)
    for task in PROBE_TASKS:
        arrivals = first_arrivals(messages, task)
        assert {e["event_id"] for e in arrivals} == {str(i) for i in first + second}
        assert all(v == sorted(v) for v in versions_by_aggregate(arrivals).values())


@pytest.mark.django_db(transaction=True)
def test_commands_succeed_while_the_broker_is_down_and_the_backlog_drains_once_it_is_back(relays, broker, writer):
    # given: a relay whose events would be parked after 2 rejections, and a broker that goes down
    relay = relays(
        "--loop",
        "--interval",
        "0.1",
        broker=broker,
        env={"OUTBOX_MAX_ATTEMPTS": "2", "OUTBOX_BACKOFF_BASE_SECONDS": "0.05", "OUTBOX_BACKOFF_MAX_SECONDS": "0.2"},
    )
    relay.wait_for_output("relaying in batches")
    broker.stop()

    with web_broker(broker.url):
        # when
        started = time.monotonic()
        responses = [
            command(writer, "register-customer", {"first_name": "Ada", "last_name": f"L{i}", "email": f"a{i}@x.org"})
            for i in range(5)
        ]
        elapsed = time.monotonic() - started

        # then: every command succeeded, without waiting on the broker (the nudge on commit fails fast)
        assert [r.status_code for r in responses] == [201] * 5
        assert elapsed < 5
        events = OutboxEvent.objects.filter(event_type="CustomerRegistered")
        assert events.count() == 5
        # the backlog stays: attempts pile up past OUTBOX_MAX_ATTEMPTS, yet an outage parks nothing as dead
        eventually(lambda: min(events.values_list("attempts", flat=True)) > 2, timeout=20)
        assert events.filter(published_at__isnull=True, dead_at__isnull=True).count() == 5
        assert set(events.values_list("last_error", flat=True)) == {
            f"OperationalError: Error 111 connecting to 127.0.0.1:{broker.port}. Connection refused."
        }
        assert re.search(r"failed [1-9]", relay.output()), relay.output()

        # when the broker is back, on the same port
        broker.start()

        # then the backlog drains
        eventually(lambda: not events.filter(published_at__isnull=True).exists(), timeout=20)
    relayed = {e["event_id"] for _, envelopes in bus_messages(broker.client(), [PROJECT_EVENTS]) for e in envelopes}
    assert relayed == {str(e.event_id) for e in events}
    assert relay.terminate() == 0


@pytest.mark.django_db(transaction=True)
def test_two_relays_on_a_backlog_publish_every_event_once_and_each_aggregate_in_order(relays, broker):
    # given: two relays polling side by side, in batches small enough that one relay alone needs a few hundred
    # of them (with 50, one relay sometimes drained the whole backlog between two polls of the other)
    pair = [relays("--loop", "--interval", "0.05", "--batch-size", "10", broker=broker) for _ in range(2)]
    for relay in pair:
        relay.wait_for_output("relaying in batches")

    # when: 3000 events land at once, 30 aggregates of 100 versions interleaved, so the next versions of an
    # aggregate are often in the other relay's batch
    event_ids = write_probe_events(aggregates=30, versions=100, prefix="pair")
    eventually(lambda: unpublished(event_ids) == 0, timeout=60, interval=0.2)

    # then: both relays stop cleanly on SIGTERM, both took part, and their totals add up to the backlog
    assert [relay.terminate() for relay in pair] == [0, 0]
    assert all("stopped by SIGTERM" in relay.output() for relay in pair)
    totals = [relay.published_in_total() for relay in pair]
    assert min(totals) > 0 and sum(totals) == 3000, totals
    # every event was marked published exactly once (marking counts an attempt)
    assert set(OutboxEvent.objects.filter(event_id__in=event_ids).values_list("attempts", flat=True)) == {1}
    # every event reached each subscriber exactly once, every aggregate in version order
    messages = bus_messages(broker.client(), PROBE_TASKS)
    for task in PROBE_TASKS:
        envelopes = [e for t, batch in messages if t == task for e in batch]
        assert sorted(e["event_id"] for e in envelopes) == sorted(str(i) for i in event_ids)
        by_aggregate = versions_by_aggregate(envelopes)
        assert len(by_aggregate) == 30
        assert all(versions == list(range(1, 101)) for versions in by_aggregate.values())


@pytest.mark.django_db(transaction=True)
def test_transactions_committing_in_the_opposite_order_to_their_created_at_are_both_published(probe_subscribers):
    # given: T1 writes its event first and keeps its transaction open
    t1_written, t1_may_commit = threading.Event(), threading.Event()
    t1_event_id: list[UUID] = []

    def slow_transaction() -> None:
        try:
            with transaction.atomic():
                t1_event_id.extend(write_probe_events(aggregates=1, versions=1, prefix="t1"))
                t1_written.set()
                t1_may_commit.wait(timeout=20)
        finally:
            connection.close()

    t1 = threading.Thread(target=slow_transaction)
    t1.start()
    assert t1_written.wait(timeout=10)
    # and T2 writes its event later but commits first
    [t2_event_id] = write_probe_events(aggregates=1, versions=1, prefix="t2")
    published: list[str] = []

    def record(task_name: str, envelopes: list[dict[str, Any]]) -> None:
        published.extend(e["event_id"] for e in envelopes if task_name == PROBE_TASKS[0])

    try:
        # when the relay runs before T1 commits, then again after
        relay_once(publish=record)
        t1_may_commit.set()
    finally:
        t1_may_commit.set()
        t1.join(timeout=20)
    relay_once(publish=record)

    # then
    [t1_id] = t1_event_id
    t1_row, t2_row = OutboxEvent.objects.get(pk=t1_id), OutboxEvent.objects.get(pk=t2_event_id)
    assert t1_row.created_at < t2_row.created_at
    assert published == [str(t2_event_id), str(t1_id)]
    assert t1_row.published_at is not None and t2_row.published_at is not None


@pytest.mark.django_db
def test_a_poison_event_is_parked_dead_after_max_attempts_while_every_other_event_flows_past_it(
    settings, probe_subscribers, broker
):
    # given: one event the bus refuses, a later version of its aggregate, and twenty others
    settings.OUTBOX_MAX_ATTEMPTS = 3
    settings.OUTBOX_BACKOFF_BASE_SECONDS = 0
    poison_id, successor_id = write_probe_events(aggregates=1, versions=2, prefix="poison")
    others = write_probe_events(aggregates=5, versions=4, prefix="healthy")

    with web_broker(broker.url), bus_publisher() as bus:

        def refusing_the_poison(task_name: str, envelopes: list[dict[str, Any]]) -> None:
            if str(poison_id) in {e["event_id"] for e in envelopes}:
                raise ValueError("the bus refuses this payload")
            bus(task_name, envelopes)

        # when
        reports = [relay_once(publish=refusing_the_poison) for _ in range(4)]

    # then: the others were published on the first run, on the real broker
    assert unpublished(others) == 0
    relayed = first_arrivals(bus_messages(broker.client(), PROBE_TASKS), PROBE_TASKS[0])
    assert {e["event_id"] for e in relayed} == {str(i) for i in others}
    # the poison event was parked after three rejections, kept with its error
    poison = OutboxEvent.objects.get(pk=poison_id)
    assert (poison.status, poison.attempts) == (OutboxEvent.Status.DEAD, 3)
    assert "ValueError: the bus refuses this payload" in poison.last_error
    assert [r.dead for r in reports] == [0, 0, 1, 0]
    # its successor waits behind it, unsent, and is not claimed again (so it holds up no batch)
    successor = OutboxEvent.objects.get(pk=successor_id)
    assert (successor.status, successor.attempts) == (OutboxEvent.Status.PENDING, 0)
    assert reports[-1].claimed == 0

    # when an operator requeues the dead event and the bus accepts it
    assert requeue_dead(OutboxEvent.objects.filter(pk=poison_id)) == 1
    with web_broker(broker.url), bus_publisher() as bus:
        report = relay_once(publish=bus)

    # then both go out, in version order
    assert report.published == 2
    relayed = first_arrivals(bus_messages(broker.client(), PROBE_TASKS), PROBE_TASKS[0])
    assert [e["event_id"] for e in relayed[-2:]] == [str(poison_id), str(successor_id)]


@pytest.mark.parametrize("failure", ["dead", "backing off"])
@pytest.mark.django_db
def test_events_waiting_behind_a_failed_version_are_deferred_and_do_not_fill_the_batches(probe_subscribers, failure):
    # given: version 1 of a busy aggregate failed, twenty later versions wait behind it, then three other events
    first, *waiting = write_probe_events(aggregates=1, versions=21, prefix="busy")
    retry_at = timezone.now() + timedelta(hours=1)
    if failure == "dead":
        OutboxEvent.objects.filter(pk=first).update(dead_at=timezone.now(), attempts=10)
    else:
        OutboxEvent.objects.filter(pk=first).update(attempts=2, next_attempt_at=retry_at)
    others = write_probe_events(aggregates=3, versions=1, prefix="quiet")
    sent: list[str] = []

    def record(task_name: str, envelopes: list[dict[str, Any]]) -> None:
        sent.extend(e["aggregate_id"] for e in envelopes if task_name == PROBE_TASKS[0])

    # when: relaying in batches of five
    reports = [relay_once(batch_size=5, publish=record) for _ in range(6)]

    # then: each waiting event was claimed once and deferred; the others went out
    assert [r.claimed for r in reports] == [5, 5, 5, 5, 3, 0]
    assert sent == ["quiet-0", "quiet-1", "quiet-2"] and unpublished(others) == 0
    deferred_to = set(OutboxEvent.objects.filter(pk__in=waiting).values_list("next_attempt_at", flat=True))
    if failure == "dead":  # looked at again after the longest backoff, unless the dead one is requeued first
        [deferred_to_time] = deferred_to
        assert deferred_to_time > timezone.now() + timedelta(seconds=299)
    else:  # until the failed version's next attempt
        assert deferred_to == {retry_at}
    assert unpublished(waiting) == 20


@pytest.fixture(params=["keys as one JSON parameter (PostgreSQL)", "keys as VALUES parameters (SQLite's dialect)"])
def predecessor_lookup(request, monkeypatch) -> str:
    """The relay's predecessor lookups as PostgreSQL's dialect builds them, and as SQLite's does, run here too
    (its row-value IN over VALUES, chunked under SQLite's limit on parameters, is plain SQL PostgreSQL runs)."""
    if request.param.startswith("keys as VALUES"):
        lookup = outbox_relay._predecessor_rows

        def built_by_sqlites_dialect(wanted):
            with pytest.MonkeyPatch.context() as during:
                during.setitem(sqlkit.dialects._chosen, "default", sqlkit.dialects.SQLite("default"))
                return lookup(wanted)

        monkeypatch.setattr(outbox_relay, "_predecessor_rows", built_by_sqlites_dialect)
    return request.param


@pytest.mark.django_db
def test_one_batch_over_hundreds_of_aggregates_releases_exactly_those_whose_predecessor_is_published(
    probe_subscribers, predecessor_lookup
):
    # given: 300 aggregates of three versions, version 1 published everywhere; version 2 published for the first
    # hundred, dead for the second and backing off for the third
    n = 100
    written = write_probe_events(aggregates=3 * n, versions=3, prefix="many")
    by_version = {version: written[(version - 1) * 3 * n : version * 3 * n] for version in (1, 2, 3)}
    # and a hundred aggregates of another type with the ids of the second hundred, only version 1 published, so a
    # lookup must match on type and id
    with transaction.atomic():
        twins = append(
            [
                NewEvent(
                    event_type=PROBE,
                    aggregate_type="ProbeTwin",
                    aggregate_id=f"many-{aggregate}",
                    aggregate_version=version,
                    payload={},
                )
                for version in (1, 2, 3)
                for aggregate in range(n, 2 * n)
            ]
        )
    retry_at = timezone.now() + timedelta(hours=1)
    OutboxEvent.objects.filter(pk__in=[*by_version[1], *by_version[2][:n], *twins[:n]]).update(
        published_at=timezone.now(), attempts=1
    )
    OutboxEvent.objects.filter(pk__in=by_version[2][n : 2 * n]).update(dead_at=timezone.now(), attempts=10)
    OutboxEvent.objects.filter(pk__in=by_version[2][2 * n :]).update(attempts=2, next_attempt_at=retry_at)
    sent: list[dict[str, Any]] = []

    def record(task_name: str, envelopes: list[dict[str, Any]]) -> None:
        sent.extend(e for e in envelopes if task_name == PROBE_TASKS[0])

    # when: one batch claims every due event
    report = relay_once(batch_size=1000, publish=record)

    # then: the first hundred and the twins (versions 2 and 3, in order) went out; the others were held and deferred
    released = {str(i) for i in [*by_version[3][:n], *twins[n:]]}
    assert (report.claimed, report.published, report.held, report.deferred) == (5 * n, 3 * n, 2 * n, 2 * n)
    assert {e["event_id"] for e in sent} == released
    twin_versions = versions_by_aggregate([e for e in sent if e["aggregate_type"] == "ProbeTwin"])
    assert len(twin_versions) == n and all(versions == [2, 3] for versions in twin_versions.values())
    assert unpublished([UUID(i) for i in released]) == 0
    behind_dead = OutboxEvent.objects.filter(pk__in=by_version[3][n : 2 * n]).values_list("next_attempt_at", flat=True)
    assert min(behind_dead) > timezone.now() + timedelta(seconds=299)
    behind_backoff = OutboxEvent.objects.filter(pk__in=by_version[3][2 * n :]).values_list("next_attempt_at", flat=True)
    assert set(behind_backoff) == {retry_at}


@pytest.mark.django_db
def test_a_broker_lost_between_two_batches_of_a_drain_fails_the_next_batch_as_an_outage_and_the_next_drain_reconnects(
    settings, probe_subscribers, broker, monkeypatch
):
    # given: 30 events, a drain in batches of 10 over one broker connection, and a broker that dies after the
    # first batch is published and marked
    settings.OUTBOX_OUTAGE_RETRY_SECONDS = 0
    event_ids = write_probe_events(aggregates=10, versions=3, prefix="reconnect")
    relay_batch = outbox_relay.relay_once
    batches: list[RelayReport] = []

    def batch_then_lose_the_broker(**kwargs: Any) -> RelayReport:
        batches.append(relay_batch(**kwargs))
        if len(batches) == 1:
            broker.stop()
        return batches[-1]

    monkeypatch.setattr(outbox_relay, "relay_once", batch_then_lose_the_broker)

    with web_broker(broker.url):
        # when
        first_drain = relay_until_drained(batch_size=10)

        # then: the second batch failed as an outage, on the connection the first one used; nothing is dead
        assert [(r.published, r.failed, r.broker_down) for r in batches] == [(10, 0, False), (0, 10, True)]
        assert (first_drain.published, first_drain.dead) == (10, 0)
        assert unpublished(event_ids) == 20
        assert not OutboxEvent.objects.dead().exists()

        # when the broker is back, on the same port
        broker.start()
        second_drain = relay_until_drained(batch_size=10)

    # then the next drain connects again and publishes the rest, each aggregate in order
    assert (second_drain.published, second_drain.failed) == (20, 0)
    assert unpublished(event_ids) == 0
    relayed = first_arrivals(bus_messages(broker.client(), PROBE_TASKS), PROBE_TASKS[0])
    assert len(relayed) == 20
    assert all(versions == sorted(versions) for versions in versions_by_aggregate(relayed).values())


@pytest.mark.django_db
def test_an_outage_makes_events_due_again_after_a_flat_second_however_often_they_failed(settings, probe_subscribers):
    # given: events that failed nine times already (their backoff would now be minutes)
    settings.OUTBOX_OUTAGE_RETRY_SECONDS = 1.0
    event_ids = write_probe_events(aggregates=3, versions=1, prefix="flat")
    OutboxEvent.objects.filter(pk__in=event_ids).update(attempts=9)

    def broker_down(task_name: str, envelopes: list[dict[str, Any]]) -> None:
        raise BrokerUnavailable("Error 111 connecting to the broker. Connection refused.")

    # when: a relay run meets the broker down
    started = timezone.now()
    report = relay_once(publish=broker_down)

    # then: the attempt counts, and the events are due again a second later, not after a backoff; none is dead
    assert (report.broker_down, report.failed, report.dead) == (True, 3, 0)
    rows = OutboxEvent.objects.filter(pk__in=event_ids)
    assert set(rows.values_list("attempts", flat=True)) == {10}
    due = list(rows.values_list("next_attempt_at", flat=True))
    assert all(started < at <= timezone.now() + timedelta(seconds=1) for at in due), due


@pytest.mark.django_db(transaction=True)
def test_the_relay_and_its_nudge_send_each_task_to_the_queue_of_its_kind_of_work(broker):
    # given: an order placed (the projections, the saga and the webhooks subscribe to it), with this process on a
    # Redis broker, whose lists are named after the queues
    with web_broker(broker.url):
        order = OrderStream(customer_id=str(uuid4()))
        write_to_log([order.placed(line("SKU-ROUTE"))])  # its commit nudges the relay

        # when
        eventually(lambda: broker.client().llen("relay"), timeout=10)
        with bus_publisher() as bus:
            relay_once(publish=bus)

    # then: each task went to its own queue, by its name's route in settings, and nothing to the default queue
    queued = tasks_by_queue(broker.client())
    assert queued == {
        "relay": ["outbox_app.relay_outbox"],
        "projections": [PROJECT_EVENTS],
        "sagas": ["sagas_app.handle_events"],
        "webhooks": ["webhooks_app.fan_out_events"],
        "celery": [],
    }


@pytest.mark.django_db
def test_the_relay_sends_each_event_as_its_rows_envelope(probe_subscribers):
    # given: events with and without the metadata keys the envelope carries
    with transaction.atomic():
        with_keys, without_keys = append(
            [
                NewEvent(
                    event_type=PROBE,
                    aggregate_type="Probe",
                    aggregate_id="envelope",
                    aggregate_version=1,
                    payload={"amount": "12.50", "lines": [{"sku": "A-1", "quantity": 2}], "note": None},
                    metadata={"correlation_id": "req-1", "causation_id": "cmd-1", "client_id": "c"},
                ),
                NewEvent(
                    event_type=PROBE, aggregate_type="Probe", aggregate_id="bare", aggregate_version=1, payload={}
                ),
            ]
        )
    sent: list[dict[str, Any]] = []

    def record(task_name: str, envelopes: list[dict[str, Any]]) -> None:
        sent.extend(envelopes if task_name == PROBE_TASKS[0] else [])

    # when
    relay_once(publish=record)

    # then: exactly what the row's to_envelope() gives, the shape consumers and replays rely on
    expected = [OutboxEvent.objects.get(pk=pk).to_envelope() for pk in (with_keys, without_keys)]
    assert sent == expected
    assert [list(envelope) for envelope in sent] == [list(envelope) for envelope in expected]
    assert (sent[0]["correlation_id"], sent[0]["causation_id"], sent[1]["correlation_id"]) == ("req-1", "cmd-1", None)


@pytest.mark.django_db(transaction=True)
def test_the_relay_commits_without_waiting_for_the_disk_and_only_in_its_own_transaction(probe_subscribers):
    # given: a connection that waits for the disk on commit
    write_probe_events(aggregates=1, versions=2, prefix="async-commit")
    seen: list[str] = []

    def synchronous_commit() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            return cursor.fetchone()[0]

    def record_the_setting(task_name: str, envelopes: list[dict[str, Any]]) -> None:
        if task_name == PROBE_TASKS[0]:
            seen.append(synchronous_commit())

    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO on")
    try:
        # when: the relay runs a batch in its own transaction, then one inside a caller's transaction
        own = relay_once(batch_size=1, publish=record_the_setting)
        after_own = synchronous_commit()
        with transaction.atomic():
            nested = relay_once(batch_size=1, publish=record_the_setting)
            in_callers = synchronous_commit()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET synchronous_commit")

    # then: off for its own transaction only, untouched in the caller's
    assert (own.published, nested.published) == (1, 1)
    assert seen == ["off", "on"]
    assert (after_own, in_callers) == ("on", "on")


@pytest.mark.django_db
def test_drains_and_nudges_reuse_one_broker_connection_per_thread(settings, probe_subscribers, broker):
    # given: a private broker, so every client connection on it is ours; one drain and one nudge opened ours
    def drain_and_nudge(n: int) -> None:
        write_probe_events(aggregates=2, versions=2, prefix=f"reuse-{n}")
        assert relay_until_drained(batch_size=10).published == 4
        send_nudge()
        cache.delete(NUDGE_KEY)

    probe = broker.client()

    def ours() -> set[str]:
        return {c["id"] for c in probe.client_list()} - {str(probe.client_id())}

    with web_broker(broker.url):
        drain_and_nudge(0)
        connected = ours()

        # when: ten more
        for n in range(1, 11):
            drain_and_nudge(n)

        # then: they used the connections already open
        assert connected and ours() == connected


@pytest.fixture
def idle_process_of_a_quiet_system(settings: Any) -> None:
    """This process (a worker or a web process, not eager) committed no events for a while, and no relay published
    anything in the last seconds (as far as the shared count knows)."""
    settings.OUTBOX_RELAY_HERE_AFTER_IDLE = 0.05
    outbox._Activity.last_ended = time.monotonic() - 1
    now = int(time.time())
    cache.delete_many([RELAYED_KEY.format(second=now - back) for back in range(-1, 3)])


@pytest.mark.django_db(transaction=True)
def test_a_process_idle_before_a_block_relays_the_blocks_events_itself_when_it_ends(
    probe_subscribers, broker, idle_process_of_a_quiet_system
):

    with web_broker(broker.url):
        # when: a block commits events in two transactions
        with outbox.one_relay():
            first = write_probe_events(aggregates=1, versions=2, prefix="here-1")
            second = write_probe_events(aggregates=1, versions=1, prefix="here-2")
            assert OutboxEvent.objects.filter(published_at__isnull=False).count() == 0

        # then: they are published as the block ends, by this process, in one batch, with no nudge sent
        assert set(OutboxEvent.objects.filter(published_at__isnull=False).values_list("pk", flat=True)) == {
            *first,
            *second,
        }
        messages = bus_messages(broker.client(), PROBE_TASKS)
        assert [task for task, _ in messages] == PROBE_TASKS
        assert cache.get(NUDGE_KEY) is None
        assert "outbox_app.relay_outbox" not in tasks_on_bus(broker.client())


@pytest.mark.django_db(transaction=True)
def test_a_busy_process_nudges_the_relay_worker_instead(settings, probe_subscribers, broker):
    # given: a process whose last block ended a moment ago (a saga worker in a burst)
    settings.OUTBOX_RELAY_HERE_AFTER_IDLE = 0.05

    with web_broker(broker.url):
        with outbox.one_relay():
            write_probe_events(aggregates=1, versions=1, prefix="busy-before")
        # when: the next block begins at once
        with outbox.one_relay():
            written = write_probe_events(aggregates=1, versions=1, prefix="busy")

        # then: the event waits for the relay worker, which a nudge on the bus wakes
        assert OutboxEvent.objects.get(pk=written[0]).published_at is None
        assert eventually(lambda: "outbox_app.relay_outbox" in tasks_on_bus(broker.client()))
        on_the_bus = {e["event_id"] for _, envelopes in bus_messages(broker.client(), PROBE_TASKS) for e in envelopes}
        assert str(written[0]) not in on_the_bus


def tasks_by_queue(client: redis.Redis) -> dict[str, list[str]]:
    """The task of every message waiting in each work queue, newest first."""
    return {
        queue: [json.loads(raw)["headers"]["task"] for raw in client.lrange(queue, 0, -1)]
        for queue in settings.WORK_QUEUES
    }


def tasks_on_bus(client: redis.Redis) -> list[str]:
    """The task of every message waiting in the work queues."""
    return [task for tasks in tasks_by_queue(client).values() for task in tasks]


@pytest.mark.django_db(transaction=True)
def test_a_request_in_an_idle_process_relays_its_commands_events_once_its_response_is_sent(
    broker, writer, idle_process_of_a_quiet_system
):

    with web_broker(broker.url):
        # when
        registered = command(
            writer, "register-customer", {"first_name": "Ada", "last_name": "L", "email": "here@example.com"}
        )

        # then: by the time the client has the response, this process published the event, and nudged no one
        assert registered.status_code == 201, registered.json()
        event = OutboxEvent.objects.get(event_type="CustomerRegistered")
        assert event.published_at is not None
        assert [envelope["event_id"] for _, envelope in project_messages(broker)] == [str(event.event_id)]
        assert "outbox_app.relay_outbox" not in tasks_on_bus(broker.client())


def project_messages(broker: ThrowawayRedis) -> list[tuple[str, dict[str, Any]]]:
    return [
        (task, envelope)
        for task, envelopes in bus_messages(broker.client(), [PROJECT_EVENTS])
        for envelope in envelopes
    ]


@pytest.mark.django_db(transaction=True)
def test_relaying_here_takes_one_batch_and_leaves_a_longer_backlog_to_the_relay_worker(
    settings, probe_subscribers, broker, idle_process_of_a_quiet_system
):
    # given: an idle process, and more events waiting than a batch holds
    settings.OUTBOX_BATCH_SIZE = 2

    with web_broker(broker.url):
        # when
        with outbox.one_relay():
            write_probe_events(aggregates=5, versions=1, prefix="backlog")

        # then: one batch went out from here, and the relay worker is nudged for the rest
        assert OutboxEvent.objects.filter(published_at__isnull=False).count() == 2
        assert eventually(lambda: "outbox_app.relay_outbox" in tasks_on_bus(broker.client()))


@pytest.mark.django_db(transaction=True)
def test_an_idle_process_of_a_busy_system_nudges_the_relay_worker_instead(settings, probe_subscribers, broker):
    # given: an idle process, while every relay together published more than the pacing line in the last second
    settings.OUTBOX_RELAY_HERE_AFTER_IDLE = 0.05
    settings.OUTBOX_RELAY_PACED_ABOVE = 120
    outbox._Activity.last_ended = time.monotonic() - 1
    last_second = int(time.time()) - 1
    cache.set(RELAYED_KEY.format(second=last_second), 500, timeout=10)
    cache.set(RELAYED_KEY.format(second=last_second + 1), 500, timeout=10)  # in case the second turns meanwhile

    with web_broker(broker.url):
        # when
        with outbox.one_relay():
            (written,) = write_probe_events(aggregates=1, versions=1, prefix="busy-system")

        # then: the relay worker's paced batches get it
        assert OutboxEvent.objects.get(pk=written).published_at is None
        assert eventually(lambda: "outbox_app.relay_outbox" in tasks_on_bus(broker.client()))


@pytest.mark.django_db(transaction=True)
def test_every_relay_counts_what_it_published_per_second_in_the_shared_cache(settings, probe_subscribers, broker):
    # given
    start = int(time.time())
    cache.delete_many([RELAYED_KEY.format(second=start + k) for k in range(3)])
    write_probe_events(aggregates=3, versions=2, prefix="counted")

    # when: two relays publish
    with web_broker(broker.url):
        published = relay_once(batch_size=4).published + relay_once(batch_size=4).published

    # then: the seconds they ran in count them, each read as "the last second" one second later
    counted = [relayed_last_second(now=lambda s=second: s + 1) for second in range(start, int(time.time()) + 1)]
    assert published == 6
    assert sum(n or 0 for n in counted) == 6


@pytest.fixture
def a_subscriber_queue_that_refuses_messages(settings: Any) -> Iterator[str]:
    """On the suite's RabbitMQ: the second probe task routed to a queue that holds no message and refuses to take
    one (max length 0, overflow reject-publish): the broker answers its publishes with a nack. Removed after."""
    if not settings.CELERY_BROKER_URL.startswith("amqp"):
        pytest.skip("publisher confirms are RabbitMQ's")
    refusing = Queue(
        "outbox-test-refusing",
        Exchange("tasks", type="topic", durable=True),
        routing_key="outbox-test-refusing",
        durable=False,
        auto_delete=False,
        queue_arguments={"x-max-length": 0, "x-overflow": "reject-publish"},
    )
    queues, routes = current_app.conf.task_queues, current_app.conf.task_routes
    reconfigure_celery(
        task_queues=[*queues, refusing], task_routes={**routes, PROBE_TASKS[1]: {"queue": refusing.name}}
    )
    try:
        yield refusing.name
    finally:
        reconfigure_celery(task_queues=queues, task_routes=routes)
        with current_app.connection_for_write() as broker:
            refusing.bind(broker.default_channel).delete()


@pytest.mark.django_db(transaction=True)
def test_an_event_counts_as_published_only_once_the_broker_confirmed_every_message_that_carries_it(
    settings, probe_subscribers, a_subscriber_queue_that_refuses_messages
):
    # given: three events, whose batch goes to two subscriber tasks; the broker takes the first task's message and
    # refuses the second's (a nack, after the relay sent both without waiting)
    settings.OUTBOX_OUTAGE_RETRY_SECONDS = 0
    event_ids = write_probe_events(aggregates=3, versions=1, prefix="nacked")

    # when
    refused = relay_once()

    # then: none of them is published, and the refusal is the broker's failure, not the events': retried as an
    # outage is (never parked dead, due again at once), on a new connection
    assert (refused.published, refused.failed, refused.broker_down, refused.dead) == (0, 3, True, 0)
    assert unpublished(event_ids) == 3

    # when the queue takes messages again
    reconfigure_celery(
        task_routes={name: route for name, route in current_app.conf.task_routes.items() if name != PROBE_TASKS[1]}
    )
    relayed = relay_once()

    # then the batch is published
    assert (relayed.published, relayed.failed) == (3, 0)
    assert unpublished(event_ids) == 0


@pytest.mark.django_db(transaction=True)
def test_a_claim_behind_thousands_of_published_rows_reads_only_a_few_pages_once_one_claim_passed_them(
    probe_subscribers,
):
    # given: 3,000 events published (their rows left the unpublished rows' partial index only in the table's
    # visibility: no vacuum has removed their entries), and one event to relay
    write_probe_events(aggregates=1000, versions=3, prefix="published")
    for _ in range(3):
        assert relay_once(batch_size=1000, publish=lambda task_name, envelopes: None).published == 1000
    waiting = write_probe_events(aggregates=1, versions=1, prefix="waiting")

    def claim_read() -> tuple[int, str]:
        """The claim's pages read and plan, in a transaction set up as the relay's own."""
        with transaction.atomic():
            outbox_relay._set_up_the_relays_transaction()
            with CaptureQueriesContext(connection) as claimed:
                outbox_relay._claim(100)
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {claimed.captured_queries[-1]['sql']}")
                (plan,) = cursor.fetchone()[0]
        return plan["Plan"]["Shared Hit Blocks"] + plan["Plan"].get("Shared Read Blocks", 0), json.dumps(plan)

    # when: a first claim passes the published rows' entries, and a second one claims again
    claim_read()
    pages, plan = claim_read()

    # then: the second one reads the index in order, skips the entries the first marked dead, and reads a few
    # pages, not the ~100 pages the published rows fill (a bitmap scan reads them all, every time)
    assert "Bitmap" not in plan
    assert pages < 30, plan
    assert unpublished(waiting) == 1


@pytest.mark.django_db(transaction=True)
def test_a_relay_that_finds_rabbitmq_down_records_an_outage_and_publishes_once_it_is_back(settings, probe_subscribers):
    # given: a private RabbitMQ node, stopped before this thread ever connected to it, and three events
    settings.OUTBOX_OUTAGE_RETRY_SECONDS = 0
    event_ids = write_probe_events(aggregates=3, versions=1, prefix="rabbit-down")
    reports: list[RelayReport] = []

    def relay_in_a_new_thread() -> None:
        try:
            reports.append(relay_once())
        finally:
            connection.close()

    with PrivateRabbitMQ.running() as node:
        use_broker(node.url, write_url=node.url)
        try:
            node.stop()

            # when: a relay run in a thread with no broker connection yet (its first connect is refused)
            worker = threading.Thread(target=relay_in_a_new_thread)
            worker.start()
            worker.join(timeout=30)

            # then: an outage, recorded as such (attempts counted, due again, nothing dead), not an error
            assert [(r.published, r.failed, r.broker_down, r.dead) for r in reports] == [(0, 3, True, 0)]
            assert unpublished(event_ids) == 3
            assert set(OutboxEvent.objects.filter(pk__in=event_ids).values_list("attempts", flat=True)) == {1}

            # when the node is back, on the same port
            node.start()
            worker = threading.Thread(target=relay_in_a_new_thread)
            worker.start()
            worker.join(timeout=30)
        finally:
            use_broker(settings.CELERY_BROKER_URL, write_url=None)

    # then: the next run publishes them, confirmed by the broker
    assert (reports[-1].published, reports[-1].failed) == (3, 0)
    assert unpublished(event_ids) == 0
