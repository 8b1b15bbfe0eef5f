"""Celery entry points of the outbox: the relay, run by beat every second and nudged on commit."""

from celery import shared_task
from django.core.cache import cache

from outbox_app.outbox import NUDGE_KEY
from outbox_app.relay import relay_until_drained

# Well inside the task's soft time limit: a batch cut short by the limit would be published but not marked.
RELAY_TASK_BUDGET_SECONDS = 30


@shared_task(name="outbox_app.relay_outbox", acks_late=False, time_limit=55, soft_time_limit=50, ignore_result=True)
def relay_outbox() -> int:
    # Clear the nudge first: a commit from now on nudges again, and one before is seen by the claim below.
    cache.delete(NUDGE_KEY)
    return relay_until_drained(max_seconds=RELAY_TASK_BUDGET_SECONDS).published
