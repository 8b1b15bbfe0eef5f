"""The write side's door into the outbox: append events inside the caller's transaction."""

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import structlog
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from uuid_utils.compat import uuid7

from outbox_app.bus import broker_connection
from outbox_app.models import OutboxEvent

log = structlog.get_logger(__name__)
NUDGE_KEY = "outbox:relay-nudge-pending"
NUDGE_TTL_SECONDS = 5
# A nudge that waited this long in the queue is stale: beat has run the relay many times since.
NUDGE_EXPIRES_SECONDS = 30


@dataclass(frozen=True, kw_only=True)
class NewEvent:
    event_type: str
    aggregate_type: str
    aggregate_id: str
    aggregate_version: int
    payload: dict[str, Any]
    schema_version: int = 1
    metadata: dict[str, Any] = field(default_factory=dict)
    event_id: UUID = field(default_factory=uuid7)


def append(events: Sequence[NewEvent]) -> list[UUID]:
    """Write events as outbox rows in the current transaction; nudge the relay once it commits."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("Outbox rows must be written inside the transaction that changes the aggregate.")
    rows = [
        OutboxEvent(
            event_id=event.event_id,
            event_type=event.event_type,
            schema_version=event.schema_version,
            aggregate_type=event.aggregate_type,
            aggregate_id=event.aggregate_id,
            aggregate_version=event.aggregate_version,
            payload=event.payload,
            metadata=event.metadata,
        )
        for event in events
    ]
    OutboxEvent.objects.bulk_create(rows)
    transaction.on_commit(nudge_relay)
    return [row.event_id for row in rows]


def nudge_relay() -> None:
    """Ask for a relay run now (beat is the safety net); with a broker, from a thread so the commit does not wait."""
    if getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
        # Embedded default: the nudge runs the relay itself, in-process, right after the commit.
        send_nudge()
    else:
        _nudger.request()


def send_nudge() -> None:
    """Queue one relay run, unless one is queued and not started yet (the relay clears the key when it starts)."""
    from outbox_app.tasks import relay_outbox

    try:
        if cache.add(NUDGE_KEY, 1, timeout=NUDGE_TTL_SECONDS):
            # A fail-fast connection: with the broker down, the nudge must not hang on it.
            with broker_connection() as connection:
                relay_outbox.s().apply_async(connection=connection, retry=False, expires=NUDGE_EXPIRES_SECONDS)
    except Exception:
        # The broker or Redis is down: the event is safe in the outbox and beat will relay it.
        log.warning("outbox.nudge_failed", exc_info=True)


class Nudger:
    """Sends nudges from one thread per process, so a commit costs no Redis round trip of its own.

    Requests that arrive while a nudge is being sent, or less than `min_interval` seconds after one, fold into
    one more, sent after them: every commit is still followed by a nudge that starts after it (at most
    `min_interval` later), and under load many commits share one. Waking the thread costs the committing
    thread a GIL hand-off, and a relay run takes longer than the interval anyway. The thread is started on
    first use in each process (a forked worker starts its own); a process killed with a request pending loses
    only the nudge, never the event: beat relays it within a second.
    """

    def __init__(self, send: Callable[[], None], min_interval: Callable[[], float] = lambda: 0.0) -> None:
        self._send = send
        self._min_interval = min_interval
        self._wanted = threading.Event()
        self._started_lock = threading.Lock()
        self._pid: int | None = None

    def request(self) -> None:
        if self._pid != os.getpid():
            self._start()
        self._wanted.set()

    def _start(self) -> None:
        with self._started_lock:
            if self._pid == os.getpid():
                return
            self._wanted = threading.Event()
            threading.Thread(target=self._run, args=(self._wanted,), name="outbox-nudger", daemon=True).start()
            self._pid = os.getpid()

    def _run(self, wanted: threading.Event) -> None:
        while True:
            wanted.wait()
            wanted.clear()
            try:
                self._send()
            except Exception:  # the thread must outlive any one nudge
                log.warning("outbox.nudge_failed", exc_info=True)
            if interval := self._min_interval():
                time.sleep(interval)


_nudger = Nudger(send_nudge, min_interval=lambda: settings.OUTBOX_NUDGE_MIN_INTERVAL)
