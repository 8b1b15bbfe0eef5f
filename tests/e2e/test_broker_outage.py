"""The broker stopped under load, on RabbitMQ (the production broker) and on Redis: nothing is lost, nothing stops.

The production processes (gunicorn, one worker per queue of work, beat) run on a broker of the test's own (a
private RabbitMQ node, or a private redis-server writing every command to its append-only file, as a Redis
broker must), while client threads register customers and place orders. The broker is stopped for five seconds
and started again on the same port. Then:
  - every command was accepted (201/202) throughout: the outbox holds the events while the broker is away;
  - every process that was running is still the same process (a worker survives the outage and resumes
    consuming: no supervisor restarted it);
  - within 30 s of the broker's return, every accepted registration is in the read model and every accepted
    order is settled (saga completed, order confirmed or cancelled).

On RabbitMQ nothing waits for beat's redelivery from the event log: the broker kept every message (durable
quorum queues, confirmed publishes, countdowns held by the broker) and requeued what the lost connections had
not acknowledged. The same run on Redis is also the stack tests' pass on Redis as broker.
"""

import re
import signal
import time
from collections.abc import Iterator
from typing import Protocol

import pytest
from django.db import connection, transaction

from bench.private_services import PrivateRabbitMQ, Service, private_broker
from queries_app.models import CustomerReadModel
from tests.conftest import eventually
from tests.load import FAST_SAGAS, Api, Load, api_token, outage_under_load, seed, wait_converged
from tests.stack import PRODUCTION_QUEUES, Stack, database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stack]

OUTAGE_SECONDS = 5
CONVERGE_WITHIN_SECONDS = 30


class Broker(Service, Protocol):
    @property
    def url(self) -> str: ...


@pytest.fixture(params=["rabbitmq", "redis"])
def broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    with private_broker(request.param) as broker:
        yield broker


@pytest.fixture
def stack(broker: Broker, stack_env: dict[str, str], transactional_db: None, tmp_path) -> Iterator[Stack]:
    stack = Stack(env={**stack_env, "CELERY_BROKER_URL": broker.url, **FAST_SAGAS}, logs=tmp_path)
    yield stack
    stack.stop_all()


def test_a_broker_stopped_under_load_loses_nothing_and_no_process_stops(broker: Broker, stack: Stack):
    # given: the production processes on this broker, and clients registering customers and placing orders
    port = stack.start_production()
    api = Api(port, api_token())
    skus, customers = seed(api)
    running = {name: stack.pid(name) for name in stack.processes}

    # when: the broker goes away for five seconds, under load, and comes back on the same port
    load = Load(api, skus, customers)
    back = outage_under_load(load, broker, seconds=OUTAGE_SECONDS)

    # then: every command was accepted, none waited on the broker
    assert set(load.statuses()) <= {201, 202}, load.statuses()
    assert not load.unresolved()
    assert len(load.accepted("register-customer")) > 10 and len(load.accepted("place-order")) > 10, load.statuses()
    # and every accepted command reached the read model, every order settled, within 30 s of the broker's return
    wait_converged(database_url(), load, within=CONVERGE_WITHIN_SECONDS - (time.monotonic() - back))
    print(f"converged {time.monotonic() - back:.1f}s after the broker's return; answers {dict(load.statuses())}")
    # and no process died on the way: the workers reconnected and resumed consuming by themselves
    assert {name: stack.pid(name) for name in running} == running
    for queue in PRODUCTION_QUEUES:
        log = (stack.logs / f"worker-{queue}.log").read_text(errors="replace")
        assert "Connection to broker lost" in log, queue
        assert "Unrecoverable error" not in log, log[-3000:]
    if isinstance(broker, PrivateRabbitMQ):
        # nothing had to be fed again from the event log: the broker lost no message
        worker_logs = "".join((stack.logs / f"worker-{q}.log").read_text(errors="replace") for q in PRODUCTION_QUEUES)
        assert "projection.redelivered" not in worker_logs
        assert "saga.started_by_reconciliation" not in worker_logs


def test_on_rabbitmq_the_message_a_killed_worker_held_is_applied_within_ten_seconds(
    stack_env: dict[str, str], transactional_db: None, tmp_path
):
    with PrivateRabbitMQ.running() as node:
        stack = Stack(env={**stack_env, "CELERY_BROKER_URL": node.url}, logs=tmp_path)
        try:
            # given: the relay, one projection worker, and the customer read table locked by this test, so the
            # worker's projection waits on the lock while it holds its message (taken, not acknowledged)
            stack.start_worker("worker-relay", concurrency=1, queues=["relay"])
            stack.start_worker("worker-a", concurrency=1, queues=["projections"])
            api = Api(stack.start_web(), api_token())
            with connection.cursor() as cursor, transaction.atomic():
                cursor.execute("LOCK TABLE read_customer IN ACCESS EXCLUSIVE MODE")
                customers = [
                    api.until_ok("register-customer", {"first_name": "A", "last_name": str(i), "email": f"k{i}@x.org"})
                    for i in range(10)
                ]
                held = eventually(lambda: received_projection(stack, "worker-a"), timeout=20)

                # when: that worker is killed, and another one takes its place
                stack.stop("worker-a", signal.SIGKILL)
                killed = time.monotonic()
            stack.start_worker("worker-b", concurrency=1, queues=["projections"])

            # then: the broker gave the held message back at once, and every customer is projected in 10 s
            ids = [c.body["customer_id"] for c in customers]
            eventually(lambda: CustomerReadModel.objects.filter(customer_id__in=ids, version=1).count() == len(ids))
            elapsed = time.monotonic() - killed
            print(f"converged {elapsed:.1f}s after the kill")
            assert elapsed < 10
            assert f"queries_app.project_events[{held}] succeeded" in (stack.logs / "worker-b.log").read_text()
        finally:
            stack.stop_all()


def received_projection(stack: Stack, worker: str) -> str | None:
    """The id of a projection task the worker has received (and, with the table locked, not finished)."""
    match = re.search(
        r"queries_app\.project_events\[([0-9a-f-]+)\] received", (stack.logs / f"{worker}.log").read_text()
    )
    return match.group(1) if match else None
