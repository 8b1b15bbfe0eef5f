"""Celery entry points of the write side: periodic upkeep."""

from celery import shared_task
from django.utils import timezone

from commands_app.models import IdempotencyRecord


@shared_task(name="commands_app.prune_idempotency_records", time_limit=300, soft_time_limit=280, ignore_result=True)
def prune_idempotency_records() -> int:
    """Delete durable idempotency records past their window (the Redis tier expires on its own)."""
    deleted, _ = IdempotencyRecord.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted
