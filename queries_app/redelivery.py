"""Feeds each projection, from the event log, the published events it has not applied well after publication.

The broker is a pipe, not a store. A delivery can vanish: a countdown retry is held in a worker's memory until
it is due and dies with a SIGKILLed worker (the Redis transport does not bring such messages back reliably,
celery/celery#1810, #7924), and a message can be dropped between a relay's publish and a consumer's ack by a
broker that loses its data. The outbox row is the event's durable copy, so beat runs `redeliver()` every
PROJECTION_REDELIVER_INTERVAL seconds: an event published more than PROJECTION_REDELIVER_AFTER_SECONDS ago whose
version is above the projection's position for its aggregate, and which is not parked, is fed through the same
engine as a delivery (oldest first, so a lost predecessor comes before the successors that wait on it and
unparks them). The engine's inbox and version guard make a redelivery of an event still in flight harmless.

What does not apply here either is parked as the task would park it, so it is fed once and then shows up to
operators (`projection_status`, the admin, `retry_parked_events`) instead of being retried every tick.
"""

from dataclasses import dataclass
from datetime import timedelta

import structlog
from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils import timezone

from outbox_app.models import OutboxEvent
from queries_app.envelopes import Envelope
from queries_app.lag import applied_by
from queries_app.models import ParkedEvent
from queries_app.projection_engine.apply import park, project
from queries_app.projection_engine.projection import Projection

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Redelivery:
    projection: str
    found: int
    applied: int
    parked: int


def unapplied_published(projection: Projection, *, older_than: timedelta, limit: int) -> list[Envelope]:
    """The oldest published events the projection has neither applied nor parked, published before now - older_than."""
    parked = ParkedEvent.objects.filter(projection=projection.name, event_id=OuterRef("event_id"))
    rows = (
        OutboxEvent.objects.using("default")
        .published()
        .filter(aggregate_type__in=projection.follows, published_at__lt=timezone.now() - older_than)
        .exclude(applied_by(projection.name))
        .exclude(Exists(parked))
        .order_by("created_at", "aggregate_version")[:limit]
    )
    return [Envelope(**row.to_envelope()) for row in rows]  # type: ignore[typeddict-item]


def redeliver(projection: Projection, *, older_than: timedelta | None = None, limit: int | None = None) -> Redelivery:
    older_than = older_than or timedelta(seconds=settings.PROJECTION_REDELIVER_AFTER_SECONDS)
    envelopes = unapplied_published(
        projection, older_than=older_than, limit=limit or settings.PROJECTION_REDELIVER_BATCH_SIZE
    )
    if not envelopes:
        return Redelivery(projection.name, found=0, applied=0, parked=0)
    run = project(envelopes, projections=[projection])
    for pending in run.pending:
        park(pending, attempts=settings.PROJECTION_MAX_ATTEMPTS)
    result = Redelivery(projection.name, found=len(envelopes), applied=run.applied, parked=len(run.pending))
    # A redelivery means a delivery was lost somewhere: worth a warning, it should be rare.
    log.warning(
        "projection.redelivered",
        projection=projection.name,
        found=result.found,
        applied=result.applied,
        parked=result.parked,
        event_ids=[e["event_id"] for e in envelopes[:20]],
    )
    return result
