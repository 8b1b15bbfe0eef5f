"""The write side's door into the outbox: append events inside the caller's transaction."""

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any
from uuid import UUID

import structlog
from django.conf import settings
from django.core.cache import cache
from django.db import models, transaction
from uuid_utils.compat import uuid7

import sqlkit
from observability import tracing
from outbox_app.bus import broker_connection
from outbox_app.models import OutboxEvent
from outbox_app.pacing import relayed_last_second
from outbox_app.relay import drained, relay_once

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


# The columns an appended row sets; the others keep their database defaults (created_at: the clock at insert).
_APPENDED = [field for field in OutboxEvent._meta.concrete_fields if field.db_default is models.NOT_PROVIDED]


def append(events: Sequence[NewEvent]) -> list[UUID]:
    """Write events as outbox rows now, in the current transaction; nudge the relay once it commits."""
    if events:
        _in_a_transaction()
        sqlkit.send(insert_rows(events))
        transaction.on_commit(nudge_relay)
    return [event.event_id for event in events]


def stage(owner: sqlkit.Transaction, events: Sequence[NewEvent]) -> None:
    """Stage the events' outbox rows in the owner's transaction (sent with its next flush); nudge the relay once
    it commits. The unit of work stages them after the aggregates' rows: one round trip for both."""
    if events:
        _in_a_transaction()
        owner.stage(*insert_rows(events))
        owner.on_commit(nudge_relay)


def insert_rows(events: Sequence[NewEvent]) -> list[sqlkit.Statement]:
    """The INSERT that appends the events, without RETURNING (created_at, the one column the database fills in, is
    not needed back)."""
    if trace := tracing.trace_metadata():
        # The row keeps the trace of the span that writes it; the relay continues that trace (observability).
        events = [replace(event, metadata={**event.metadata, **trace}) for event in events]
    rows = [
        {
            column.name: getattr(event, column.name) if hasattr(event, column.name) else column.get_default()
            for column in _APPENDED
        }
        for event in events
    ]
    return sqlkit.insert(OutboxEvent, rows)


def _in_a_transaction() -> None:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("Outbox rows must be written inside the transaction that changes the aggregate.")


_held = threading.local()


class _Activity:
    """When this process (any thread) last ended a one_relay() block that committed events."""

    last_ended = 0.0


@contextmanager
def one_relay() -> Iterator[None]:
    """The relay runs asked for by the commits inside the block happen as one when it ends, however it ends: a
    saga run's steps, each a commit, reach the relay (and the consumers) as one batch instead of one each. Blocks
    nest (the outermost acts); per thread. Each HTTP request is such a block too, ending once its response is
    sent (`request_began` and `request_ended`, connected to Django's request signals).

    When this process's previous block that committed events ended OUTBOX_RELAY_HERE_AFTER_IDLE seconds or more
    before this one began, and every relay together published fewer than OUTBOX_RELAY_PACED_ABOVE events in the
    last second (counted in the cache, outbox_app/pacing.py), this process relays the events itself as the block
    ends (one batch of `relay_once`, as the relay worker would; a backlog beyond it is the relay worker's,
    nudged): no nudge, no wait for the relay worker, a hop less between a commit and its consumers. A busier
    process, or any process of a busier system, nudges instead, so that under load the relay worker gathers every
    process's events into paced batches. A relay run that fails here (the database or the broker away) nudges too;
    the events are safe in the outbox either way, and beat relays them within a second if the nudge is lost as
    well.
    """
    depth, began = _begin_block()
    try:
        yield
    finally:
        _end_block(depth, began)


def request_began(**kwargs: object) -> None:
    """Django's request_started: the request is a one_relay() block (not in eager mode, where a commit relays at
    once). A block a request left open (its response never closed) is ended first."""
    if getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
        return
    if getattr(_held, "request_block", None) is not None:
        request_ended()
    _held.request_block = _begin_block()


def request_ended(**kwargs: object) -> None:
    """Django's request_finished, once the response is sent: the request's block ends."""
    block = getattr(_held, "request_block", None)
    if block is None:
        return
    _held.request_block = None
    try:
        _end_block(*block)
    except Exception:  # the response is sent; whatever happens here must not reach the server
        log.warning("outbox.relay_after_request_failed", exc_info=True)


def _begin_block() -> tuple[int, float]:
    depth = getattr(_held, "depth", 0)
    _held.depth = depth + 1
    return depth, time.monotonic()


def _end_block(depth: int, began: float) -> None:
    _held.depth = depth
    if depth == 0 and getattr(_held, "wanted", False):
        _held.wanted = False
        _relay_here_or_nudge(idle_before=began - _Activity.last_ended)
        _Activity.last_ended = time.monotonic()


def _relay_here_or_nudge(idle_before: float) -> None:
    after_idle = settings.OUTBOX_RELAY_HERE_AFTER_IDLE
    here = (
        0 < after_idle <= idle_before
        and not getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False)  # there the nudge relays in-process already
        and not transaction.get_connection().in_atomic_block  # never inside a caller's transaction
        and _system_is_quiet()
    )
    if not here:
        nudge_relay()
        return
    try:
        # One batch: a backlog (after an outage, say) is the relay worker's, not a request thread's.
        report = relay_once(batch_size=settings.OUTBOX_BATCH_SIZE)
    except Exception:
        log.warning("outbox.relay_here_failed", exc_info=True)
        nudge_relay()
        return
    if not drained(report, settings.OUTBOX_BATCH_SIZE):
        nudge_relay()


def _system_is_quiet() -> bool:
    """Whether every relay together published fewer events in the last second than the rate above which the relay
    worker paces its runs (unknown, with the cache away: no)."""
    relayed = relayed_last_second()
    return relayed is not None and relayed < settings.OUTBOX_RELAY_PACED_ABOVE


def nudge_relay() -> None:
    """Ask for a relay run now (beat is the safety net); with a broker, from a thread so the commit does not wait."""
    if getattr(_held, "depth", 0):
        _held.wanted = True  # acted on when the one_relay() block ends
        return
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
