"""Celery entry points of the outbox: the relay, run by beat every second and nudged on commit; the archiving."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.cache import cache

from outbox_app.operations import archive_published
from outbox_app.outbox import NUDGE_KEY
from outbox_app.relay import relay_until_drained

# Well inside the task's soft time limit: a batch cut short by the limit would be published but not marked.
RELAY_TASK_BUDGET_SECONDS = 30


@shared_task(name="outbox_app.relay_outbox", acks_late=False, time_limit=55, soft_time_limit=50, ignore_result=True)
def relay_outbox() -> int:
    # Clear the nudge first: a commit from now on nudges again, and one before is seen by the claim below.
    cache.delete(NUDGE_KEY)
    return relay_until_drained(max_seconds=RELAY_TASK_BUDGET_SECONDS).published


@shared_task(name="outbox_app.archive_published_events", time_limit=3600, soft_time_limit=3590, ignore_result=True)
def archive_published_events() -> int:
    """Beat: move events published more than OUTBOX_ARCHIVE_AFTER_DAYS ago to the archive (`prune_outbox` does the
    same on demand); they stay in the event log."""
    return archive_published(older_than=timedelta(days=settings.OUTBOX_ARCHIVE_AFTER_DAYS))
