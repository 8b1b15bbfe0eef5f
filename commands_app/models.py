"""The write model's tables: aggregates as rows, and the durable idempotency records."""

from django.db import models
from django.db.models.functions import Now


class CustomerRecord(models.Model):
    customer_id = models.UUIDField(primary_key=True)
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    email = models.CharField(max_length=254, unique=True)
    version = models.PositiveIntegerField()

    class Meta:
        db_table = "write_customer"
        verbose_name = "customer (write model)"

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name} <{self.email}>"


class IdempotencyRecord(models.Model):
    """A command's first response, the one every retry with its key gets: the tier Redis cannot lose.

    Stored in the transaction that applied the command, or, for a business error, right after its
    transaction rolled back. The body is kept as the JSON text it was (jsonb would reorder its keys).
    """

    client_id = models.CharField(max_length=64)
    key = models.UUIDField()
    command_type = models.CharField(max_length=100)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True)
    response_body = models.TextField(null=True)
    # A business error's code, message, details and the first request's correlation id; null for a success.
    response_error = models.JSONField(null=True)
    response_headers = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "write_idempotency_record"
        constraints = [models.UniqueConstraint(fields=["client_id", "key"], name="idempotency_unique_client_key")]

    def __str__(self) -> str:
        return f"{self.command_type} {self.key}"


class ProductRecord(models.Model):
    sku = models.CharField(max_length=64, primary_key=True)
    name = models.CharField(max_length=200)
    description = models.TextField(max_length=5000, blank=True)
    price = models.DecimalField(max_digits=12, decimal_places=2)
    stock = models.PositiveIntegerField()
    reserved = models.PositiveIntegerField(default=0)
    sold = models.PositiveIntegerField(default=0)
    version = models.PositiveIntegerField()

    class Meta:
        db_table = "write_product"
        verbose_name = "product (write model)"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(stock__gte=models.F("reserved") + models.F("sold")),
                name="product_stock_covers_holds",
            ),
        ]

    def __str__(self) -> str:
        return self.sku


class OrderRecord(models.Model):
    order_id = models.UUIDField(primary_key=True)
    customer_id = models.UUIDField(db_index=True)
    lines = models.JSONField()
    total = models.DecimalField(max_digits=14, decimal_places=2)
    payment_reference = models.CharField(max_length=40)
    status = models.CharField(max_length=20)
    cancellation_reason = models.CharField(max_length=30, blank=True)
    reserved = models.BooleanField(default=False)
    payment_status = models.CharField(max_length=20, default="none")
    authorization_id = models.CharField(max_length=100, blank=True, default="")
    version = models.PositiveIntegerField()

    class Meta:
        db_table = "write_order"
        verbose_name = "order (write model)"

    def __str__(self) -> str:
        return str(self.order_id)


class PaymentToken(models.Model):
    """An order's payment token while its authorization is undecided: written in the transaction that places the
    order, deleted in the one that decides the authorization or ends the order.

    The token is the customer's card secret at the provider: it is in this table only, never in an event, a
    log line, a read model or an admin page. The order and its events name the payment by its reference.
    """

    order_id = models.UUIDField(primary_key=True)
    token = models.CharField(max_length=100)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "write_payment_token"

    def __str__(self) -> str:
        return f"payment token of {self.order_id}"


class CustomerKey(models.Model):
    """A customer's key, which seals the personal data in the customer's events (outbox_app/sealing.py).

    Created with the first event that holds the customer's personal data; destroyed by the customer's erasure,
    which keeps the row as a tombstone (no key, `erased_at` set): an event written later (a race with the erasure)
    is then stored with its personal fields erased instead of under a new key. Keys never leave this table: no
    event, log line, read model or admin page shows one.
    """

    customer_id = models.UUIDField(primary_key=True)
    key = models.BinaryField(max_length=32, null=True)
    created_at = models.DateTimeField(db_default=Now())
    erased_at = models.DateTimeField(null=True)

    class Meta:
        db_table = "write_customer_key"

    def __str__(self) -> str:
        return f"key of customer {self.customer_id}"
