"""Consistency levels, and the waits that earn them.

Every query view declares a level (the consistency map: `manage.py consistency_map`, docs/consistency.md)
and says in X-Consistency-Level which one each answer has:

- STRONG: the answer reflects every command acknowledged before the query. The view reads the newest
  version of each aggregate it shows from the event log (every command writes its events in its own
  transaction) and waits until the projection has applied them, then reads the primary.
- READ_YOUR_WRITES: a query that sends back the X-Consistency-Token of a command waits until the projection
  has applied every version in the token, then reads the primary, never the cache or a replica. It reflects
  those commands, and whatever else the projection had applied.
- EVENTUAL, HIGHLY_EVENTUAL: what the read tables (or the cache) hold, behind by the lag.

A wait lasts at most CONSISTENCY_WAIT_SECONDS; then the answer is 503 with Retry-After, never stale data. On
PostgreSQL it sleeps on the projection's notifications (each apply's commit sends one, see `applied_channel`), so
it answers as soon as the projection caught up, however long it waited; elsewhere, or with
CONSISTENCY_WAIT_LISTENS off, it polls with growing pauses.
"""

from collections.abc import Callable

from django.conf import settings
from django.db.models import Q

import sqlkit
from api_common.consistency import AggregateVersion, Consistency, wait_until
from queries_app.models import AggregatePosition
from queries_app.projection_engine.projection import Projection, applied_channel

__all__ = ["Consistency", "applied", "wait_until", "wait_until_applied"]

# While listening, a notification wakes the wait; these pauses only bound it should one never come (an apply
# that sends none, such as a replay's swap).
LISTENING_FIRST_PAUSE = 0.05
LISTENING_MAX_PAUSE = 0.25


def wait_until_applied(
    probe: Callable[[], bool],
    projection: str,
    *,
    timeout: float,
    using: str,
    first_pause: float = LISTENING_FIRST_PAUSE,
    max_pause: float = LISTENING_MAX_PAUSE,
) -> bool:
    """Wait until `probe` says `projection` has caught up (True), or `timeout` seconds passed (False).

    Probed once first (the usual answer: it has); then, where the database notifies, this connection listens on
    the projection's channel and probes again (a commit before the LISTEN is seen by this probe, one after it
    notifies), and each notification wakes it to probe again."""
    if probe():
        return True
    listening = (
        sqlkit.dialect(using).listening(applied_channel(projection)) if settings.CONSISTENCY_WAIT_LISTENS else None
    )
    if listening is None:
        return wait_until(probe, timeout=timeout)
    with listening as notified:
        return wait_until(probe, timeout=timeout, sleep=notified, first_pause=first_pause, max_pause=max_pause)


def applied(projection: Projection, versions: list[AggregateVersion], *, using: str) -> Callable[[], bool]:
    """A probe: has `projection` applied these versions? Aggregates it does not follow do not concern it."""
    needed = {(v.aggregate_type, v.aggregate_id): v.version for v in versions if v.aggregate_type in projection.follows}
    if not needed:
        return lambda: True
    which = Q()
    for aggregate_type, aggregate_id in needed:
        which |= Q(aggregate_type=aggregate_type, aggregate_id=aggregate_id)
    positions = AggregatePosition.objects.using(using).filter(which, projection=projection.name)

    def probe() -> bool:
        have = {(t, i): v for t, i, v in positions.values_list("aggregate_type", "aggregate_id", "version")}
        return all(have.get(aggregate, 0) >= version for aggregate, version in needed.items())

    return probe
