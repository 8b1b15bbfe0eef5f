"""Consistency levels, and the wait that turns any query into a read-your-writes one.

Every query view declares a level (the consistency map: `manage.py consistency_map`, docs/consistency.md).
A query that sends back the X-Consistency-Token of a command waits, up to CONSISTENCY_WAIT_SECONDS, until
the projection it reads has applied every version in the token; it reads the primary, never the cache or
a replica. If the projection does not catch up in time the answer is 503 with Retry-After, never stale data.
"""

from collections.abc import Callable

from django.db.models import Q

from api_common.consistency import AggregateVersion, Consistency, wait_until
from queries_app.models import AggregatePosition
from queries_app.projections.base import Projection

__all__ = ["Consistency", "applied", "wait_until"]


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
