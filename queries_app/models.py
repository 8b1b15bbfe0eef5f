"""Read tables (denormalized for their queries) and the bookkeeping that makes projections exact."""

from django.db import models


class CustomerView(models.Model):
    customer_id = models.UUIDField(primary_key=True)
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    email = models.CharField(max_length=254, db_index=True)
    orders_count = models.PositiveIntegerField(default=0)
    lifetime_value = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    last_order_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "read_customer"
        verbose_name = "customer view"

    def __str__(self) -> str:
        return self.email


class ProcessedEvent(models.Model):
    """The inbox: one row per (projection, event) applied, written in the same transaction as the effect."""

    projection = models.CharField(max_length=50)
    event_id = models.UUIDField()
    processed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "read_processed_event"
        constraints = [
            models.UniqueConstraint(fields=["projection", "event_id"], name="processed_event_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.projection} {self.event_id}"


class AggregatePosition(models.Model):
    """The last version of each aggregate a projection applied: N+1 waits until N is here."""

    projection = models.CharField(max_length=50)
    aggregate_type = models.CharField(max_length=50)
    aggregate_id = models.CharField(max_length=64)
    version = models.PositiveIntegerField()

    class Meta:
        db_table = "read_aggregate_position"
        constraints = [
            models.UniqueConstraint(
                fields=["projection", "aggregate_type", "aggregate_id"], name="aggregate_position_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.projection} {self.aggregate_type}/{self.aggregate_id} v{self.version}"


class ProjectionCheckpoint(models.Model):
    projection = models.CharField(max_length=50, primary_key=True)
    events_applied = models.PositiveBigIntegerField(default=0)
    last_event_id = models.UUIDField(null=True, blank=True)
    last_event_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "read_projection_checkpoint"

    def __str__(self) -> str:
        return self.projection
