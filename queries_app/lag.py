"""How far each projection is behind the event log: exact, from the log and the projection's positions.

An event is unapplied when its version is above the projection's position for its aggregate. One query over
the followed part of the log (a hashed anti-join against the positions, an index-only scan of the log's
(aggregate_type, aggregate_id, aggregate_version) key) gives both the count of unapplied events and the
oldest of them: exact whatever the order of delivery, including parked and not yet published events, and
still right after the outbox prunes old published events. It costs a pass over the log (a few hundred ms
per million events), so status commands and the consistency map run it, request paths never do.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Count, Exists, Min, OuterRef
from django.utils import timezone

import sqlkit
from outbox_app.models import OutboxEvent
from queries_app.models import AggregatePosition, ParkedEvent, ProjectionCheckpoint
from queries_app.projection_engine.projection import Projection


@dataclass(frozen=True)
class Lag:
    events_behind: int
    oldest_unapplied_at: datetime | None

    @property
    def age_seconds(self) -> float:
        if self.oldest_unapplied_at is None:
            return 0.0
        return max((timezone.now() - self.oldest_unapplied_at).total_seconds(), 0.0)

    def __str__(self) -> str:
        return f"{self.events_behind} event(s), oldest {self.age_seconds:.1f}s"


def applied_by(position_key: str) -> Exists:
    """A condition on event-log rows: the positions under this key (a projection's name, or a replay's) have
    reached the row's version of its aggregate."""
    return Exists(
        AggregatePosition.objects.filter(
            projection=position_key,
            aggregate_type=OuterRef("aggregate_type"),
            aggregate_id=OuterRef("aggregate_id"),
            version__gte=OuterRef("aggregate_version"),
        )
    )


def lag(projection: Projection) -> Lag:
    with transaction.atomic(using="default"):
        # Hashed, whatever the statistics say: planned on statistics from before a burst (a few rows in each
        # table), the anti-join ran as a nested loop over every event and position, 1,165 x 390 comparisons at
        # 1,600 events, and beat's measurement became a fifth of PostgreSQL's busy time (docs/benchmarks.md).
        if (hashed := sqlkit.dialect("default").without_nested_loops()) is not None:
            sqlkit.send([hashed], using="default")
        unapplied = (
            OutboxEvent.objects.using("default")
            .filter(aggregate_type__in=projection.follows)
            .exclude(applied_by(projection.name))
            .aggregate(count=Count("pk"), oldest=Min("created_at"))
        )
    return Lag(events_behind=unapplied["count"], oldest_unapplied_at=unapplied["oldest"])


@dataclass(frozen=True)
class Status:
    projection: str
    events_applied: int
    lag: Lag
    parked: int
    last_event_at: datetime | None
    rebuilt_at: datetime | None


def status(projection: Projection) -> Status:
    checkpoint = ProjectionCheckpoint.objects.using("default").filter(projection=projection.name).first()
    return Status(
        projection=projection.name,
        events_applied=checkpoint.events_applied if checkpoint else 0,
        lag=lag(projection),
        parked=ParkedEvent.objects.using("default").filter(projection=projection.name).count(),
        last_event_at=checkpoint.last_event_at if checkpoint else None,
        rebuilt_at=checkpoint.rebuilt_at if checkpoint else None,
    )
