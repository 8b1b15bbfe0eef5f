"""Read tables (denormalized for their queries) and the bookkeeping that makes projections exact.

Read tables have no foreign keys and no serial columns: a replay rebuilds each one beside the live table
and swaps it in (see queries_app/projection_engine/replay.py); that keeps the swap a plain rename.
"""

from django.db import models


class CustomerReadModel(models.Model):
    """One row per customer. A row with version 0 is a placeholder: orders seen before the registration."""

    customer_id = models.UUIDField(primary_key=True)
    first_name = models.CharField(max_length=100, default="")
    last_name = models.CharField(max_length=100, default="")
    email = models.CharField(max_length=254, db_index=True, default="")
    orders_count = models.PositiveIntegerField(default=0)
    # numeric(20, 2): widened from (14, 2) in place, without a rewrite (migration 0004)
    lifetime_value = models.DecimalField(max_digits=20, decimal_places=2, default=0)
    last_order_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "read_customer"
        verbose_name = "customer (read model)"

    def __str__(self) -> str:
        return self.email


class OrderCustomer(models.Model):
    """The orders projection's own copy of each customer's name and email, fed by the Customer events it follows.

    Orders copy these in; owning the copy keeps the order view exact whatever the progress of other projections.
    """

    customer_id = models.UUIDField(primary_key=True)
    first_name = models.CharField(max_length=100, default="")
    last_name = models.CharField(max_length=100, default="")
    email = models.CharField(max_length=254, default="")

    class Meta:
        db_table = "read_order_customer"

    def __str__(self) -> str:
        return self.email


class OrderReadModel(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        CONFIRMED = "confirmed"
        CANCELLED = "cancelled"

    class CancellationReason(models.TextChoices):
        INSUFFICIENT_STOCK = "insufficient_stock"
        PAYMENT_DECLINED = "payment_declined"
        PAYMENT_TIMEOUT = "payment_timeout"
        CUSTOMER_REQUEST = "customer_request"

    class PaymentStatus(models.TextChoices):
        NONE = "none"
        AUTHORIZED = "authorized"
        DECLINED = "declined"
        # The authorization was given back (PaymentVoided; stored as PaymentRefunded before its schema version 2).
        VOIDED = "voided"

    order_id = models.UUIDField(primary_key=True)
    customer_id = models.UUIDField()
    customer_first_name = models.CharField(max_length=100, default="")
    customer_last_name = models.CharField(max_length=100, default="")
    customer_email = models.CharField(max_length=254, default="")
    # [{sku, name, quantity, unit_price, line_total}], money as decimal strings as in the events
    lines = models.JSONField(default=list)
    total = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    cancellation_reason = models.CharField(max_length=30, choices=CancellationReason.choices, blank=True, default="")
    payment_status = models.CharField(max_length=20, choices=PaymentStatus.choices, default=PaymentStatus.NONE)
    # [{at, event, detail}] in version order
    timeline = models.JSONField(default=list)
    placed_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "read_order"
        verbose_name = "order (read model)"
        indexes = [
            # orders?customer_id= (newest first) and orders?customer_id=&status=
            models.Index(fields=["customer_id", "-placed_at", "order_id"], name="read_order_customer_idx"),
            models.Index(fields=["customer_id", "status", "-placed_at", "order_id"], name="read_order_status_idx"),
        ]

    def __str__(self) -> str:
        return str(self.order_id)


class ProductReadModel(models.Model):
    """The catalog. On PostgreSQL the table also has a generated `search` tsvector with a GIN index (migration 0002)."""

    sku = models.CharField(max_length=64, primary_key=True)
    name = models.CharField(max_length=200, default="")
    description = models.TextField(default="")
    price = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    available = models.IntegerField(default=0)
    version = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "read_product"
        verbose_name = "product (read model)"

    def __str__(self) -> str:
        return self.sku


class BestSeller(models.Model):
    """Units sold per sku in confirmed orders (queries_app/best_sellers.py)."""

    sku = models.CharField(max_length=64, primary_key=True)
    units_sold = models.PositiveBigIntegerField(default=0)

    class Meta:
        db_table = "read_best_seller"
        indexes = [models.Index(fields=["-units_sold", "-sku"], name="read_best_seller_rank_idx")]

    def __str__(self) -> str:
        return f"{self.sku}: {self.units_sold}"


class InboxEntry(models.Model):
    """The inbox: one entry per (projection, event) applied, written in the same transaction as the effect."""

    projection = models.CharField(max_length=50)
    event_id = models.UUIDField()
    processed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "read_inbox"
        verbose_name_plural = "inbox entries"
        constraints = [
            models.UniqueConstraint(fields=["projection", "event_id"], name="inbox_entry_unique"),
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
    rebuilt_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "read_projection_checkpoint"

    def __str__(self) -> str:
        return self.projection


class ParkedEvent(models.Model):
    """An event a projection gave up on for now: its apply kept failing, or it kept waiting on a gap.

    Later events of the same aggregate wait behind it (per-aggregate order). It is retried by
    `retry_parked_events` or the admin action, and automatically once its predecessor is applied.
    """

    class Reason(models.TextChoices):
        FAILED = "failed"
        GAP = "gap"

    projection = models.CharField(max_length=50)
    event_id = models.UUIDField()
    event_type = models.CharField(max_length=100)
    aggregate_type = models.CharField(max_length=50)
    aggregate_id = models.CharField(max_length=64)
    aggregate_version = models.PositiveIntegerField()
    envelope = models.JSONField()
    reason = models.CharField(max_length=10, choices=Reason.choices)
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    parked_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "read_parked_event"
        constraints = [
            models.UniqueConstraint(fields=["projection", "event_id"], name="parked_event_unique"),
        ]
        indexes = [
            models.Index(
                fields=["projection", "aggregate_type", "aggregate_id", "aggregate_version"],
                name="parked_event_aggregate_idx",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.projection} {self.event_type} {self.aggregate_type}/{self.aggregate_id} v{self.aggregate_version}"
        )
