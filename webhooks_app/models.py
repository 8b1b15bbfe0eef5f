"""Webhook endpoints (a client's URL, its event types and signing secret), deliveries (one per event and endpoint,
the durable state of its retries) and their attempts (what each HTTP request got back)."""

from datetime import datetime
from typing import ClassVar

from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from uuid_utils.compat import uuid7

from api_common.models import ApiClient


class WebhookEndpointQuerySet(models.QuerySet["WebhookEndpoint"]):
    def live(self) -> "WebhookEndpointQuerySet":
        """Not deleted by their client (disabled ones included)."""
        return self.filter(deleted_at__isnull=True)

    def receiving(self) -> "WebhookEndpointQuerySet":
        """Endpoints that get new deliveries: live, enabled, of a client that is not revoked."""
        return self.live().filter(disabled_at__isnull=True, client__revoked_at__isnull=True)


class WebhookEndpoint(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    client = models.ForeignKey(ApiClient, on_delete=models.PROTECT, related_name="webhook_endpoints")
    url = models.CharField(max_length=2000)
    event_types = models.JSONField(default=list)
    # The signing secrets (whsec_ + base64): the service needs them in the clear to sign. Never shown again after
    # creation or rotation; wiped when the endpoint is deleted.
    secret = models.CharField(max_length=100, editable=False)
    previous_secret = models.CharField(max_length=100, blank=True, default="", editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    secret_rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The database clock, which events' occurred_at is on: an endpoint receives the events that occur after this.
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    failing_since = models.DateTimeField(
        null=True, blank=True, help_text="The first failed attempt since the last successful delivery."
    )
    last_delivered_at = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.TextField(blank=True, default="")
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects: ClassVar[WebhookEndpointQuerySet] = WebhookEndpointQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        verbose_name = "webhook endpoint"
        constraints = [
            models.UniqueConstraint(
                fields=["client", "url"], condition=Q(deleted_at__isnull=True), name="webhook_endpoint_unique_url"
            ),
        ]

    def __str__(self) -> str:
        return self.url

    @property
    def status(self) -> str:
        if self.deleted_at is not None:
            return "deleted"
        return "disabled" if self.disabled_at is not None else "enabled"

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets a delivery is signed with: the current one, and the previous one while it overlaps."""
        expires = self.previous_secret_expires_at
        if self.previous_secret and expires is not None and expires > now:
            return [self.secret, self.previous_secret]
        return [self.secret]


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    id = models.BigAutoField(primary_key=True)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    # The webhook-id header: the same for every attempt, so the receiver dedupes.
    event_id = models.UUIDField()
    event_type = models.CharField(max_length=100)
    # The exact body, kept so every attempt sends (and signs) the same bytes.
    body = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    retry_until = models.DateTimeField(help_text="No attempt is scheduled after this; the delivery fails instead.")
    # Whoever holds the current lease token may attempt the delivery until leased_until; a worker killed mid-attempt
    # leaves an expired lease, and beat hands the delivery out again.
    lease_token = models.UUIDField(null=True, blank=True, editable=False)
    leased_until = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        permissions = [("retry_webhookdelivery", "Can retry webhook deliveries")]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event_id"], name="webhook_delivery_once_per_endpoint"),
        ]
        indexes = [
            # Beat's scan for due deliveries, and the pending count and age, read only the pending ones.
            models.Index(fields=["next_attempt_at"], name="webhook_delivery_due_idx", condition=Q(status="pending")),
            models.Index(fields=["failed_at"], name="webhook_delivery_failed_idx", condition=Q(status="failed")),
            models.Index(fields=["created_at"], name="webhook_delivery_created_idx"),
            models.Index(fields=["event_id"], name="webhook_delivery_event_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} -> {self.endpoint_id} ({self.status})"


class WebhookAttempt(models.Model):
    class Outcome(models.TextChoices):
        DELIVERED = "delivered", "delivered (2xx)"
        HTTP_ERROR = "http_error", "HTTP error (not 2xx)"
        TIMEOUT = "timeout"
        CONNECTION_ERROR = "connection_error", "connection error"
        TLS_ERROR = "tls_error", "TLS error"
        ADDRESS_REFUSED = "address_refused", "address refused (not public)"

    id = models.BigAutoField(primary_key=True)
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    address = models.CharField(max_length=64, blank=True, help_text="The address connected to.")
    error = models.TextField(blank=True, default="")
    response_excerpt = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.outcome}"


class FanOutPosition(models.Model):
    """How far through the event log the webhooks' safety net has made sure every delivery exists (one row)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    log_position = models.BigIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"log position {self.log_position}"
