"""Saga state, persisted: one row per saga (optimistically versioned, leased to one executor) and its step log.

A saga is keyed by its type and its correlation id (the fulfilment saga's is the order id): one saga of a type
per correlation id, so a redelivered event that starts it is a no-op.
"""

from django.db import models
from django.db.models import Q
from uuid_utils.compat import uuid7

from sagas_app import domain


class Saga(models.Model):
    class Status(models.TextChoices):
        RUNNING = domain.RUNNING
        COMPENSATING = domain.COMPENSATING
        COMPLETED = domain.COMPLETED
        FAILED = domain.FAILED

    saga_id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    saga_type = models.CharField(max_length=50, help_text="Its definition (sagas_app.definitions).")
    correlation_id = models.CharField(max_length=200, help_text="What it is about, for its type: the order id.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    current_step = models.CharField(max_length=50)
    attempts = models.PositiveIntegerField(default=0, help_text="Attempts at the current step.")
    context = models.JSONField(default=dict, help_text="What the steps need: the order, the trace ids.")
    version = models.PositiveIntegerField(default=1, help_text="Bumped by every update (optimistic concurrency).")
    deadline = models.DateTimeField(null=True, blank=True, help_text="When the current step times out.")
    requested_cancellation = models.CharField(
        max_length=30, blank=True, help_text="A cancellation asked for from outside: the saga compensates."
    )
    lease_owner = models.CharField(max_length=200, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=20, blank=True, help_text="Its definition's: confirmed or cancelled, say.")
    reason = models.CharField(max_length=30, blank=True, help_text="Why the saga compensates (or compensated).")
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "saga"
        indexes = [
            # The tick reads only the sagas still in flight.
            models.Index(
                fields=["next_attempt_at"],
                name="saga_active_due_idx",
                condition=Q(status__in=domain.ACTIVE),
            ),
            models.Index(fields=["status", "created_at"], name="saga_status_age_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["saga_type", "correlation_id"], name="saga_type_correlation_unique"),
        ]
        permissions = [("operate_saga", "Can retry and abort sagas")]

    def __str__(self) -> str:
        return f"{self.saga_type} {self.correlation_id} ({self.status})"

    def state(self) -> domain.SagaState:
        return domain.SagaState(
            status=self.status,
            step=self.current_step,
            attempts=self.attempts,
            deadline=self.deadline,
            requested_cancellation=self.requested_cancellation,
            reason=self.reason,
        )


class SagaStep(models.Model):
    """One step in one direction: attempts, timing, last error and the idempotency key of its command."""

    class Direction(models.TextChoices):
        FORWARD = domain.FORWARD
        COMPENSATE = domain.COMPENSATE

    class Status(models.TextChoices):
        RUNNING = "running"
        RETRYING = "retrying"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        ABANDONED = "abandoned"

    saga = models.ForeignKey(Saga, on_delete=models.CASCADE, related_name="steps")
    step = models.CharField(max_length=50)
    direction = models.CharField(max_length=20, choices=Direction.choices)
    status = models.CharField(max_length=20, choices=Status.choices)
    attempts = models.PositiveIntegerField(default=0)
    idempotency_key = models.UUIDField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "saga_step"
        ordering = ["started_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["saga", "step", "direction"], name="saga_step_unique_direction"),
        ]

    def __str__(self) -> str:
        return f"{self.step} {self.direction} ({self.status})"
