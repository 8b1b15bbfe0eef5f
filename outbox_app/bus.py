"""The bus: send envelopes to subscriber tasks by name over a broker connection that fails fast.

Celery's default producer retries a refused connection for several seconds and waits forever on a broker that
stops answering. Neither suits the outbox: the relay holds row locks while it publishes, and the nudge runs on
the request path. These connections give up quickly and raise kombu's OperationalError, which the relay treats
as an outage (retry later, never the event's fault).

Each thread of each process keeps its connection between uses: opening one (connect, select the database,
declare the queue) costs more than sending a batch (docs/benchmarks.md, "Measured choices in the code"), and
the relay and the nudge use it many times a second. A use that raises closes it, so the next use reconnects:
a connection that saw an outage, or any error, is never trusted again.

On RabbitMQ every publish is confirmed by the broker (publisher confirms: the message is stored). A relay batch
sends one message per subscriber task; waiting for each confirm before sending the next made the batch's last
subscriber (the sagas, for an order placed) wait for the others' confirms too. The relay's publisher therefore
sends a batch's messages on a channel of its own without waiting, and `confirm_sent()` then waits for all their
confirms at once: an event still counts as published only once the broker confirmed every message that carries it
(docs/outbox.md, "Publisher confirms").
"""

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from celery import current_app
from kombu import Connection, Producer
from kombu.exceptions import OperationalError as BrokerUnavailable

__all__ = ["BrokerUnavailable", "Publisher", "broker_connection", "bus_publisher", "confirm_sent"]

CONNECT_TIMEOUT_SECONDS = 2.0
SOCKET_TIMEOUT_SECONDS = 5.0

Publisher = Callable[[str, list[dict[str, Any]]], None]


class _Confirms:
    """A channel of the kept connection in confirm mode, on which messages are sent without waiting for their
    confirms: it counts what it sent (the broker numbers a confirm channel's messages from 1) and what the broker
    confirmed, one by one or up to a number ("multiple")."""

    def __init__(self, connection: Connection) -> None:
        # py-amqp's channel (kombu types it as its abstract StdChannel, which has no confirms)
        channel: Any = connection.channel()
        channel.confirm_select()
        self.channel = channel
        self.producer = Producer(self.channel, auto_declare=False)
        self.sent = 0
        self.unconfirmed: set[int] = set()
        self.refused = False
        send_without_waiting = channel._basic_publish  # py-amqp's publish, without its wait for the confirm

        def basic_publish(*args: Any, **kwargs: Any) -> Any:
            kwargs.pop("confirm_timeout", None)
            sent = send_without_waiting(*args, **kwargs)
            self.sent += 1
            self.unconfirmed.add(self.sent)
            return sent

        channel.basic_publish = basic_publish
        channel.events["basic_ack"].add(self._confirmed)
        channel.events["basic_nack"].add(self._refused)

    def _confirmed(self, delivery_tag: int, multiple: bool) -> None:
        if multiple:
            self.unconfirmed = {tag for tag in self.unconfirmed if tag > delivery_tag}
        else:
            self.unconfirmed.discard(delivery_tag)

    def _refused(self, delivery_tag: int, multiple: bool) -> None:
        self._confirmed(delivery_tag, multiple)
        self.refused = True

    def wait(self, timeout: float) -> None:
        """Until the broker confirmed every message sent; BrokerUnavailable if it refused one (a nack: the broker
        could not store it, no fault of the message) or did not answer within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        try:
            while self.unconfirmed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(self.unconfirmed)} messages unconfirmed after {timeout}s")
                self.channel.connection.drain_events(timeout=remaining)
        except Exception as error:
            raise BrokerUnavailable(f"the broker did not confirm the messages sent: {error!r}") from error
        if self.refused:
            self.refused = False
            raise BrokerUnavailable("the broker refused to store a message (nack)")


class _Kept(threading.local):
    connection: Connection | None = None
    # What the connection was opened for: this process (a forked child never uses its parent's socket) and URL.
    owner: tuple[int, str] = (0, "")
    # The connection's channel for sending without waiting for each confirm (RabbitMQ only), opened on first use.
    confirms: _Confirms | None = None


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
    connection, _kept.connection, _kept.confirms = _kept.connection, None, None
    if connection is not None and _kept.owner[0] == os.getpid():
        with contextlib.suppress(Exception):  # closing a broken connection may fail too; it is dropped anyway
            connection.release()


@contextmanager
def bus_publisher() -> Iterator[Publisher]:
    """A publisher for relay batches: each call sends one message with a list of envelopes to a task. On RabbitMQ
    the call does not wait for the broker's confirm: `confirm_sent()` waits for every confirm of the batch."""
    app = current_app
    with broker_connection() as connection:

        def publish(task_name: str, envelopes: list[dict[str, Any]]) -> None:
            if app.conf.task_always_eager and task_name not in app.tasks:
                raise LookupError(f"Task {task_name} is not registered here: in eager mode it would be lost.")
            # Looked up at each send, where a broker that cannot be reached is an outage of this send (the relay
            # records it as such), and where a connection kombu opened again meanwhile gets a channel of its own.
            confirms = _confirms(connection)
            # argsrepr: what the message says its arguments are (for monitoring). Celery would otherwise build a
            # safe repr of every envelope, which costs more than encoding them (docs/benchmarks.md, "Orders").
            sending = {"connection": connection} if confirms is None else {"producer": confirms.producer}
            app.signature(task_name, args=[envelopes]).apply_async(
                retry=False, argsrepr=f"[{len(envelopes)} envelopes]", kwargsrepr="{}", **sending
            )

        yield publish


def _confirms(connection: Connection) -> _Confirms | None:
    """The kept connection's channel for sending without waiting for each confirm, where the broker confirms
    (RabbitMQ); None elsewhere (Redis, the in-memory transport), where a publish returns once it is sent. A new one
    when kombu has connected again since (a send that met an outage reconnects the kept connection on its next
    use), since the old channel belongs to the lost connection."""
    if not (connection.transport_options or {}).get("confirm_publish") or connection.transport.driver_type != "amqp":
        return None
    try:
        current = connection.connection  # connects if it is not connected
    except Exception as error:
        raise BrokerUnavailable(f"cannot connect to the broker: {error!r}") from error
    confirms = _kept.confirms
    if confirms is None or confirms.channel.connection is not current or not confirms.channel.is_open:
        confirms = _kept.confirms = _Confirms(connection)
    return confirms


def confirm_sent() -> None:
    """Wait until the broker confirmed every message this thread's publisher sent without waiting; raises
    BrokerUnavailable (and drops the connection, never trusted again) if it refused or did not answer."""
    confirms = _kept.confirms
    if confirms is None or (not confirms.unconfirmed and not confirms.refused):
        return
    try:
        confirms.wait(SOCKET_TIMEOUT_SECONDS)
    except BaseException:
        close_broker_connection()
        raise
