"""The bus: send envelopes to subscriber tasks by name over a broker connection that fails fast.

Celery's default producer retries a refused connection for several seconds and waits forever on a broker that
stops answering. Neither suits the outbox: the relay holds row locks while it publishes, and the nudge runs on
the request path. These connections give up quickly and raise kombu's OperationalError, which the relay treats
as an outage (retry later, never the event's fault).

Each thread of each process keeps its connection between uses: opening one (connect, select the database,
declare the queue) costs more than sending a batch (docs/benchmarks.md, "Measured choices in the code"), and
the relay and the nudge use it many times a second. A use that raises closes it, so the next use reconnects:
a connection that saw an outage, or any error, is never trusted again.
"""

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from celery import current_app
from kombu import Connection
from kombu.exceptions import OperationalError as BrokerUnavailable

__all__ = ["BrokerUnavailable", "Publisher", "broker_connection", "bus_publisher"]

CONNECT_TIMEOUT_SECONDS = 2.0
SOCKET_TIMEOUT_SECONDS = 5.0

Publisher = Callable[[str, list[dict[str, Any]]], None]


class _Kept(threading.local):
    connection: Connection | None = None
    # What the connection was opened for: this process (a forked child never uses its parent's socket) and URL.
    owner: tuple[int, str] = (0, "")


_kept = _Kept()


@contextmanager
def broker_connection() -> Iterator[Connection]:
    """This thread's broker connection (opened on first use) that raises BrokerUnavailable instead of retrying."""
    owner = (os.getpid(), str(current_app.conf.broker_write_url or current_app.conf.broker_url))
    if _kept.connection is None or _kept.owner != owner:
        close_broker_connection()
        _kept.connection = current_app.connection_for_write(
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            transport_options={
                "max_retries": 0,
                # Redis
                "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
                "socket_timeout": SOCKET_TIMEOUT_SECONDS,
                # RabbitMQ (py-amqp): a broker that stops answering, or never confirms a publish
                "read_timeout": SOCKET_TIMEOUT_SECONDS,
                "write_timeout": SOCKET_TIMEOUT_SECONDS,
            },
        )
        _kept.owner = owner
    try:
        yield _kept.connection
    except BaseException:
        close_broker_connection()
        raise


def close_broker_connection() -> None:
    """Close this thread's kept connection, if any; the next use opens a new one."""
    connection, _kept.connection = _kept.connection, None
    if connection is not None and _kept.owner[0] == os.getpid():
        with contextlib.suppress(Exception):  # closing a broken connection may fail too; it is dropped anyway
            connection.release()


@contextmanager
def bus_publisher() -> Iterator[Publisher]:
    """A publisher for one relay batch: each call sends one message with a list of envelopes to a task."""
    app = current_app
    with broker_connection() as connection:

        def publish(task_name: str, envelopes: list[dict[str, Any]]) -> None:
            if app.conf.task_always_eager and task_name not in app.tasks:
                raise LookupError(f"Task {task_name} is not registered here: in eager mode it would be lost.")
            # argsrepr: what the message says its arguments are (for monitoring). Celery would otherwise build a
            # safe repr of every envelope, which costs more than encoding them (docs/benchmarks.md, "Orders").
            app.signature(task_name, args=[envelopes]).apply_async(
                connection=connection, retry=False, argsrepr=f"[{len(envelopes)} envelopes]", kwargsrepr="{}"
            )

        yield publish
