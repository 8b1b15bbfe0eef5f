"""Applies envelopes to projections exactly once and in per-aggregate order.

For each (projection, event): in one transaction, write the inbox row (a duplicate stops here), check the
aggregate's position (version N+1 waits until N is applied), apply the upsert, advance the position and
the checkpoint. Deliveries may repeat and arrive in any order across workers.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.dateparse import parse_datetime

from queries_app.envelopes import Envelope
from queries_app.models import AggregatePosition, ProcessedEvent, ProjectionCheckpoint
from queries_app.projections import PROJECTIONS
from queries_app.projections.base import Projection


class Applied(Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    WAITING = "waiting"


@dataclass
class ProjectionRun:
    applied: int = 0
    duplicates: int = 0
    waiting: list[Envelope] = field(default_factory=list)


def project(envelopes: Iterable[Envelope], projections: Sequence[Projection] = PROJECTIONS) -> ProjectionRun:
    run = ProjectionRun()
    for envelope in envelopes:
        for projection in projections:
            if envelope["event_type"] not in projection.handles:
                continue
            result = apply_once(projection, envelope)
            if result is Applied.APPLIED:
                run.applied += 1
            elif result is Applied.DUPLICATE:
                run.duplicates += 1
            elif envelope not in run.waiting:
                run.waiting.append(envelope)
    return run


def apply_once(projection: Projection, envelope: Envelope) -> Applied:
    try:
        with transaction.atomic():
            return _apply_in_transaction(projection, envelope)
    except IntegrityError:
        # A concurrent delivery of the same event committed first: the inbox row exists now.
        return Applied.DUPLICATE


def _apply_in_transaction(projection: Projection, envelope: Envelope) -> Applied:
    position = (
        AggregatePosition.objects.select_for_update()
        .filter(
            projection=projection.name,
            aggregate_type=envelope["aggregate_type"],
            aggregate_id=envelope["aggregate_id"],
        )
        .first()
    )
    current = position.version if position else 0
    version = envelope["aggregate_version"]
    if version <= current:
        return Applied.DUPLICATE
    if version > current + 1:
        return Applied.WAITING
    ProcessedEvent.objects.create(projection=projection.name, event_id=envelope["event_id"])
    projection.apply(envelope)
    if position is None:
        AggregatePosition.objects.create(
            projection=projection.name,
            aggregate_type=envelope["aggregate_type"],
            aggregate_id=envelope["aggregate_id"],
            version=version,
        )
    else:
        position.version = version
        position.save(update_fields=["version"])
    _advance_checkpoint(projection.name, envelope)
    return Applied.APPLIED


def _advance_checkpoint(name: str, envelope: Envelope) -> None:
    occurred_at = parse_datetime(envelope["occurred_at"])
    updated = ProjectionCheckpoint.objects.filter(projection=name).update(
        events_applied=F("events_applied") + 1, last_event_id=envelope["event_id"], last_event_at=occurred_at
    )
    if not updated:
        ProjectionCheckpoint.objects.get_or_create(
            projection=name,
            defaults={"events_applied": 1, "last_event_id": envelope["event_id"], "last_event_at": occurred_at},
        )
