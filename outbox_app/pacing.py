"""When the relay should wait before a run: only while events arrive faster than a rate.

A relay run costs about the same whatever its batch holds: a claim, a message per subscriber, the consumers' work
per message. At a low rate a run starts the moment a commit nudges it, so a lone command's events are not delayed.
When commits come fast, runs would follow each other back to back, each with the few events committed during
the one before; waiting `gap` seconds before each lets events gather into fewer, larger batches, and the CPU saved
goes to the commands and the consumers (docs/benchmarks.md, "Orders").

The rate is the events each run relayed over the time since the run before it started, smoothed over the last
runs. It does not depend on the waits themselves (a run that waited relays the events of its whole cycle), so
pacing never keeps itself going: once commits slow down, so does the rate, and runs start at once again.

Every relay also counts what it published per second in the cache (`count_relayed`), so that a committing process
can tell the whole system's rate before relaying its own events itself (outbox_app/outbox.py, `one_relay`): it
does so only below the same line, leaving a busier system's events to the relay worker's paced batches.
"""

import time
from collections.abc import Callable

import structlog
from django.core.cache import cache

log = structlog.get_logger(__name__)

SMOOTHING = 0.3
"""The weight of the last cycle (a run and the idle time before the next) in the rate."""


class Pacer:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.rate = 0.0
        """Events per second relayed, smoothed."""
        self._started: float | None = None
        self._relayed = 0

    def wait_before_run(self, gap: float, above: float) -> float:
        """Seconds to wait before the run that starts now: `gap` while the rate is above `above` events/s."""
        now = self.clock()
        if self._started is not None and now > self._started:
            self.rate = (1 - SMOOTHING) * self.rate + SMOOTHING * self._relayed / (now - self._started)
        self._started, self._relayed = now, 0
        return gap if gap > 0 and self.rate > above else 0.0

    def run_ended(self, relayed: int) -> None:
        self._relayed = relayed


RELAYED_KEY = "outbox:relayed:{second}"
"""The events published by every relay in one second of the wall clock (the relay worker's and the committing
processes' alike), counted in the cache: Redis, which every process shares."""
RELAYED_KEY_TTL_SECONDS = 10


def count_relayed(events: int, *, now: Callable[[], float] = time.time) -> None:
    """Add a relay run's published events to the count of this second (best effort: the cache may be away)."""
    if events <= 0:
        return
    key = RELAYED_KEY.format(second=int(now()))
    try:
        if not cache.add(key, events, timeout=RELAYED_KEY_TTL_SECONDS):
            cache.incr(key, events)
    except Exception:  # a missing count only makes the committing processes nudge (see relayed_last_second)
        log.debug("outbox.relay_count_failed", exc_info=True)


def relayed_last_second(*, now: Callable[[], float] = time.time) -> int | None:
    """The events every relay published in the last whole second; None when the cache cannot say."""
    try:
        value = cache.get(RELAYED_KEY.format(second=int(now()) - 1), 0)
    except Exception:
        return None
    return int(value)
