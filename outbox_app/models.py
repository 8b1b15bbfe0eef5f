"""The outbox table: one row per event, the source of truth until published and the event log after."""

from datetime import datetime
from typing import Any, Self, TypeVar
from uuid import UUID

from django.db import models
from django.db.models import Q
from django.db.models.expressions import Func
from django.db.models.fields.json import KeyTextTransform

from outbox_app.sealing import open_sealed
from outbox_app.upcasting import upcast

T = TypeVar("T", bound=models.Model)


class ClockTimestamp(Func):
    """The database clock at the moment of the insert (not the transaction start, as now() would be).

    Events of one aggregate are written under an advisory lock, so the wall clock at insert time keeps
    their created_at in version order even when a transaction waited for the lock.
    """

    function = "clock_timestamp"
    template = "clock_timestamp()"
    output_field = models.DateTimeField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        return self.as_sql(compiler, connection, template="STRFTIME('%%%%Y-%%%%m-%%%%d %%%%H:%%%%M:%%%%f', 'NOW')")


class LogQuerySet(models.QuerySet[T]):
    """Rows of the event log, in either of its tables (the live outbox, the archive)."""

    def with_envelope_keys(self) -> Self:
        """The metadata keys the envelope carries, as columns: read without decoding the metadata."""
        return self.annotate(
            correlation_id=KeyTextTransform("correlation_id", "metadata"),
            causation_id=KeyTextTransform("causation_id", "metadata"),
            traceparent=KeyTextTransform("traceparent", "metadata"),
        )


class OutboxEventQuerySet(LogQuerySet["OutboxEvent"]):
    def pending(self) -> "OutboxEventQuerySet":
        """Waiting for the relay: neither published nor parked as dead (what the backlog counts)."""
        return self.filter(published_at__isnull=True, dead_at__isnull=True)

    def published(self) -> "OutboxEventQuerySet":
        return self.filter(published_at__isnull=False)

    def dead(self) -> "OutboxEventQuerySet":
        return self.filter(published_at__isnull=True, dead_at__isnull=False)


class OutboxEvent(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        PUBLISHED = "published"
        DEAD = "dead"

    event_id = models.UUIDField(primary_key=True, editable=False)
    event_type = models.CharField(max_length=100)
    schema_version = models.PositiveSmallIntegerField(default=1)
    aggregate_type = models.CharField(max_length=50)
    aggregate_id = models.CharField(max_length=64)
    aggregate_version = models.PositiveIntegerField()
    payload = models.JSONField()
    metadata = models.JSONField(default=dict)
    created_at = models.DateTimeField(db_default=ClockTimestamp(), editable=False)
    published_at = models.DateTimeField(null=True, blank=True)
    dead_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    # The event's place in the log: given when it is published, in the order relay transactions commit
    # (outbox_app/log.py). Null while pending or dead.
    log_position = models.BigIntegerField(null=True, blank=True, editable=False)

    objects = OutboxEventQuerySet.as_manager()

    class Meta:
        permissions = [("retry_outboxevent", "Can retry pending and requeue dead outbox events")]
        constraints = [
            models.UniqueConstraint(
                fields=["aggregate_type", "aggregate_id", "aggregate_version"],
                name="outbox_unique_aggregate_version",
            ),
            # The log in order (the event feed, the webhooks' safety net), and its head (max) for the next batch.
            models.UniqueConstraint(
                fields=["log_position"], condition=Q(log_position__isnull=False), name="outbox_unique_log_position"
            ),
        ]
        indexes = [
            # The relay's claim query reads only this small index, however long the event log grows.
            models.Index(
                fields=["created_at"],
                name="outbox_unpublished_idx",
                condition=Q(published_at__isnull=True),
            ),
            models.Index(fields=["event_type"], name="outbox_event_type_idx"),
            # The publish rate (published in the last minute) and prune_outbox read by published_at.
            models.Index(
                fields=["published_at"], name="outbox_published_at_idx", condition=Q(published_at__isnull=False)
            ),
            models.Index(fields=["dead_at"], name="outbox_dead_idx", condition=Q(dead_at__isnull=False)),
            # The feed filtered by event type: a range of one type's positions.
            models.Index(
                fields=["event_type", "log_position"],
                name="outbox_type_position_idx",
                condition=Q(log_position__isnull=False),
            ),
            # Operators trace a request through the event log by its correlation id.
            models.Index(KeyTextTransform("correlation_id", "metadata"), name="outbox_correlation_id_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.aggregate_type}/{self.aggregate_id} v{self.aggregate_version}"

    @property
    def status(self) -> "OutboxEvent.Status":
        if self.published_at is not None:
            return self.Status.PUBLISHED
        if self.dead_at is not None:
            return self.Status.DEAD
        return self.Status.PENDING

    def to_envelope(self) -> dict[str, Any]:
        """The event as it travels on the bus: plain JSON, described in ARCHITECTURE.md (personal data opened)."""
        (opened,) = open_sealed(
            [
                envelope(
                    self.event_id,
                    self.event_type,
                    self.schema_version,
                    self.aggregate_type,
                    self.aggregate_id,
                    self.aggregate_version,
                    self.created_at,
                    self.metadata.get("correlation_id"),
                    self.metadata.get("causation_id"),
                    self.payload,
                    traceparent=self.metadata.get("traceparent"),
                )
            ]
        )
        return opened


class ArchivedEvent(models.Model):
    """A published event moved out of the hot outbox by `prune_outbox` (outbox_app/archive.py): still in the log.

    The columns the log needs and nothing of the relay's bookkeeping (attempts, errors, dead). Replay, verify
    and the event feed read this table together with the outbox (outbox_app/log.py).
    """

    event_id = models.UUIDField(primary_key=True, editable=False)
    event_type = models.CharField(max_length=100)
    schema_version = models.PositiveSmallIntegerField(default=1)
    aggregate_type = models.CharField(max_length=50)
    aggregate_id = models.CharField(max_length=64)
    aggregate_version = models.PositiveIntegerField()
    payload = models.JSONField()
    metadata = models.JSONField(default=dict)
    created_at = models.DateTimeField()
    published_at = models.DateTimeField()
    log_position = models.BigIntegerField()

    objects = LogQuerySet["ArchivedEvent"].as_manager()

    class Meta:
        constraints = [
            # Replay and verify read each aggregate's versions in order from this index.
            models.UniqueConstraint(
                fields=["aggregate_type", "aggregate_id", "aggregate_version"], name="archive_unique_aggregate_version"
            ),
            # The feed pages through the log by position; the relay's next position starts after its max.
            models.UniqueConstraint(fields=["log_position"], name="archive_unique_log_position"),
        ]
        indexes = [
            # The feed filtered by event type: a range of one type's positions.
            models.Index(fields=["event_type", "log_position"], name="archive_type_position_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.aggregate_type}/{self.aggregate_id} v{self.aggregate_version} (archived)"


def envelope(
    event_id: UUID,
    event_type: str,
    schema_version: int,
    aggregate_type: str,
    aggregate_id: str,
    aggregate_version: int,
    created_at: datetime,
    correlation_id: str | None,
    causation_id: str | None,
    payload: Any,
    *,
    traceparent: str | None = None,
) -> dict[str, Any]:
    """The envelope of an event row, from its columns in ENVELOPE_COLUMNS order (the relay reads no model objects).

    `traceparent`: the W3C trace context of the span that wrote the event, or that published it (the relay's), when
    tracing is on (observability/tracing.py). At its type's current schema (outbox_app/upcasting.py).
    """
    return upcast(
        {
            "event_id": str(event_id),
            "event_type": event_type,
            "schema_version": schema_version,
            "aggregate_type": aggregate_type,
            "aggregate_id": aggregate_id,
            "aggregate_version": aggregate_version,
            "occurred_at": created_at.isoformat(),
            "correlation_id": correlation_id,
            "causation_id": causation_id,
            "traceparent": traceparent,
            "payload": payload,
        }
    )


# The columns envelope() takes, for values_list() after with_envelope_keys().
ENVELOPE_COLUMNS = (
    "event_id",
    "event_type",
    "schema_version",
    "aggregate_type",
    "aggregate_id",
    "aggregate_version",
    "created_at",
    "correlation_id",
    "causation_id",
    "payload",
)
