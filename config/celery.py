"""The Celery application; its configuration comes from Django settings (CELERY_* names)."""

import os
from collections.abc import Callable
from typing import Any

from celery import Celery, bootsteps
from celery.app.amqp import AMQP
from celery.signals import beat_init, task_postrun, task_prerun, worker_init
from celery.utils.quorum_queues import detect_quorum_queues
from kombu import Connection
from kombu.common import Broadcast
from kombu.transport.native_delayed_delivery import (
    bind_queue_to_native_delayed_delivery_exchange,
    declare_native_delayed_delivery_exchanges_and_queues,
)

from config.broker import is_rabbitmq
from observability import tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


RECONNECT_INTERVAL_SECONDS = 1


class BrokerConnection(Connection):
    """kombu's connection, whose collect() also forgets the default channel it has cut loose.

    Why: a worker on the Redis broker died on a broker outage under load ("Unrecoverable error:
    AttributeError: 'NoneType' object has no attribute 'hostname'"). Celery 5.7's consumer handles a lost
    connection with `connection.collect()` and then `connection.close()`. On Redis, collect() cannot close the
    consumer's channel while Redis is down (the channel's pending BRPOP raises first) but still detaches the
    transport (`transport.client = None`); close() then closes that channel a second time, whose unacknowledged
    deliveries it tries to restore through a new Redis pool built from `transport.client.hostname`. The
    AttributeError is not a connection error, so nothing catches it and the worker exits. Once collect() has
    run, the channel is no longer this connection's: close() must leave it alone. The deliveries it held stay
    in Redis's unacked set and come back after the visibility timeout, as they would after a killed worker.
    (Celery 5.6 only collected; kombu 5.7.0 and Celery 5.7.0 are the newest releases.)
    """

    def collect(self, socket_timeout: float | None = None) -> None:
        super().collect(socket_timeout)
        self._default_channel = None

    def ensure_connection(
        self,
        errback: Callable[[Exception, float], None] | None = None,
        max_retries: int | None = None,
        interval_start: int = RECONNECT_INTERVAL_SECONDS,
        interval_step: int = RECONNECT_INTERVAL_SECONDS,
        interval_max: int = RECONNECT_INTERVAL_SECONDS,
        callback: Callable[[], None] | None = None,
        reraise_as_library_errors: bool = True,
        timeout: int | None = None,
    ) -> "BrokerConnection":
        """Retry a lost broker every RECONNECT_INTERVAL_SECONDS, not after 2, 4, 6... up to 30 s (kombu's default,
        which Celery's consumer uses): a worker whose broker was away for ten seconds resumed consuming up to eight
        seconds after the broker's return. A connection attempt costs the broker next to nothing."""
        super().ensure_connection(
            errback,
            max_retries,  # type: ignore[arg-type]  # kombu's stub says int; None is kombu's "no limit"
            interval_start,
            interval_step,
            interval_max,
            callback,
            reraise_as_library_errors=reraise_as_library_errors,
            timeout=timeout,
        )
        return self


class BrokerAMQP(AMQP):
    Connection = BrokerConnection


class CeleryApp(Celery):
    """Celery, with countdowns under a second rounded up to one second where RabbitMQ holds the delay.

    On RabbitMQ with quorum queues, a task sent with a countdown waits in the broker (native delayed delivery:
    TTL queues of 1, 2, 4... seconds), not in a worker's memory where a killed worker would lose it. Its
    resolution is one second, and Celery 5.7 raises ValueError("countdown must be a positive number") for a
    countdown in (0, 1): a projection's gap retry (PROJECTION_GAP_RETRY_SECONDS, 0.2 s) or a saga's short
    retry would fail to be sent at all.
    """

    def send_task(
        self,
        name: str,
        args: Any = None,
        kwargs: Any = None,
        countdown: float | None = None,
        *more: Any,
        **options: Any,
    ) -> Any:
        if (
            countdown is not None
            and 0 < countdown < 1
            and is_rabbitmq(self.conf.broker_write_url or self.conf.broker_url)
        ):
            countdown = 1.0
        return super().send_task(name, args, kwargs, countdown, *more, **options)


class DeclareWorkQueues(bootsteps.StartStopStep):
    """Declare every work queue when a worker connects, not only those it consumes, and on RabbitMQ bind them
    all to native delayed delivery.

    Celery's own DelayedDelivery step binds every queue of the app when a worker starts, but a queue must exist
    to be bound: the first worker of one queue would leave the others unbound, and a countdown sent to them
    would be dropped when due. This step does the whole job itself (both are idempotent), since bootsteps that
    need the same step run in no order one can rely on.
    """

    requires = ("celery.worker.consumer.connection:Connection",)

    def start(self, parent: Any) -> None:
        app = parent.app
        queues = [queue for queue in app.amqp.queues.values() if not isinstance(queue, Broadcast)]
        with app.connection_for_write() as connection:
            with connection.channel() as channel:
                for queue in queues:
                    queue.bind(channel).declare()
            if detect_quorum_queues(app, connection.transport.driver_type)[0]:
                queue_type = app.conf.broker_native_delayed_delivery_queue_type
                declare_native_delayed_delivery_exchanges_and_queues(connection, queue_type)
                for queue in queues:
                    bind_queue_to_native_delayed_delivery_exchange(connection, queue)


app = CeleryApp("config", amqp=BrokerAMQP)
app.steps["consumer"].add(DeclareWorkQueues)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Celery's Django fixup closes every database connection before and after each task unless told to reuse them:
# a new PostgreSQL connection per task costs about as much as a small relay run or projection batch
# (docs/benchmarks.md, "Measured choices in the code"). Reuse connections, as a web request does: per task,
# Django's close_old_connections() drops one that errored or outlived CONN_MAX_AGE (and CONN_HEALTH_CHECKS
# pings it before its next use); the fixup still recycles them every thousand tasks.
app.conf["CELERY_DB_REUSE_MAX"] = 1000


@worker_init.connect
@beat_init.connect
def configure_tracing(**kwargs: Any) -> None:
    """Workers and beat trace when OTEL_* asks (observability/tracing.py). A prefork worker sets it up before it
    forks its pool: OpenTelemetry's span processors restart their export thread in each child."""
    tracing.configure()


@task_prerun.connect
@task_postrun.connect
def close_old_connections(sender: Any = None, **kwargs: Any) -> None:
    if sender is not None and getattr(sender.request, "is_eager", False):
        return  # an eager task runs inside the caller's request or command: its connection is not ours
    from django.db import close_old_connections as close

    close()
