"""A worker killed while it holds a message: how long until the message's effect reaches the read model.

On each broker of the run's own (a private RabbitMQ node, then a private persistent redis-server): gunicorn, the
relay's worker, one projection worker and beat run with production settings. The bench locks the customer read
table, registers ten customers, and waits until the projection worker is blocked on the lock while applying
them (so it holds their message: taken, not acknowledged). It SIGKILLs that worker, releases the lock and starts
another projection worker (as a supervisor would), then times until every customer is in the read model.

RabbitMQ gives the held message back the moment the connection drops. Redis keeps it in its unacked set until
the visibility timeout (CELERY_VISIBILITY_TIMEOUT, 130 s) has passed, unless beat's redelivery from the event log
(PROJECTION_REDELIVER_AFTER_SECONDS, 60 s, looked at every PROJECTION_REDELIVER_INTERVAL, 30 s, on a lag
measured every 15 s) feeds the events again first.
"""

import time
import uuid

from django.db import connection, transaction

from bench.client import Api
from bench.context import Context
from bench.environment import reset_tables
from bench.private_services import private_broker
from bench.processes import processes
from bench.results import Figure, Section, at_most

CUSTOMERS = 10
GIVE_UP_SECONDS = 300.0


def blocked_on_the_lock() -> bool:
    """Whether a session waits for a lock on this database (pg_locks is live; pg_stat_activity would be read once
    per transaction, and this runs inside the one that holds the lock)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE NOT granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        return bool(cursor.fetchone()[0])


def projected(customer_ids: list[str]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM read_customer WHERE version = 1 AND customer_id = ANY(%s::uuid[])", [customer_ids]
        )
        return int(cursor.fetchone()[0])


def once(ctx: Context, kind: str) -> tuple[float, str]:
    """Seconds from the SIGKILL until every customer is projected, and what happened."""
    reset_tables()
    with private_broker(kind) as broker, processes(ctx.world, CELERY_BROKER_URL=broker.url) as group:
        api = Api(group.gunicorn(workers=2), ctx.token)
        # At INFO: ready when they say so (this process's Celery app is not on that broker, so cannot ping them).
        group.worker("worker-relay", concurrency=1, queues=("relay",), loglevel="INFO")
        group.worker("worker-a", concurrency=1, queues=("projections",), loglevel="INFO")
        group.beat()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("LOCK TABLE read_customer IN ACCESS EXCLUSIVE MODE")
            customer_ids = []
            for i in range(CUSTOMERS):
                body = {"first_name": "Kill", "last_name": str(i), "email": f"k-{uuid.uuid4().hex}@bench.example"}
                answer = api.command("register-customer", body)
                assert answer.status == 201, answer
                customer_ids.append(answer.body["customer_id"])
            deadline = time.monotonic() + 60
            while not blocked_on_the_lock():
                assert time.monotonic() < deadline, "the projection worker never took the message"
                time.sleep(0.1)
            group.kill("worker-a")
            killed = time.monotonic()
        group.worker("worker-b", concurrency=1, queues=("projections",), loglevel="INFO")
        while projected(customer_ids) < CUSTOMERS and time.monotonic() - killed < GIVE_UP_SECONDS:
            time.sleep(0.2)
        elapsed = time.monotonic() - killed
        done = projected(customer_ids)
    return elapsed, f"{kind}: {done}/{CUSTOMERS} customers projected {elapsed:.1f} s after the SIGKILL"


def run(ctx: Context) -> Section:
    section = Section("A killed worker's message")
    rabbitmq, rabbitmq_note = once(ctx, "rabbitmq")
    redis, redis_note = once(ctx, "redis")
    section.figures.append(
        Figure(
            "killed worker's message applied, RabbitMQ (from the SIGKILL, a new worker's start included)",
            rabbitmq,
            "s",
            target="<= 10 s",
            met=at_most(10)(rabbitmq),
        )
    )
    section.figures.append(
        Figure("  same on Redis (visibility timeout 130 s; beat's redelivery from the log after 60 s)", redis, "s")
    )
    section.notes.append(
        f"{rabbitmq_note}; {redis_note}. gunicorn 2 workers, a relay worker, one projection worker SIGKILLed while "
        "it held the message (blocked on a lock the bench held), another started at once, beat; production settings."
    )
    reset_tables()
    return section
