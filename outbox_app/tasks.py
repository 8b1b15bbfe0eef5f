"""Celery entry points of the outbox: the relay, run by beat every second and nudged on commit; the archiving."""

import time
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.cache import cache

from outbox_app.operations import archive_published
from outbox_app.outbox import NUDGE_KEY
from outbox_app.pacing import Pacer
from outbox_app.relay import relay_until_drained

# Well inside the task's soft time limit: a batch cut short by the limit would be published but not marked.
RELAY_TASK_BUDGET_SECONDS = 30


@shared_task(name="outbox_app.relay_outbox", acks_late=False, time_limit=55, soft_time_limit=50, ignore_result=True)
def relay_outbox() -> int:
    # Under a high rate of events, the relay waits a little first, with the nudge key still set: the commits
    # meanwhile send no message of their own, and their events go in this run's batch (outbox_app/pacing.py).
    # Never in eager mode (the embedded default), where the run happens in the committing request.
    gap, above = settings.OUTBOX_RELAY_GAP, settings.OUTBOX_RELAY_PACED_ABOVE
    if not relay_outbox.app.conf.task_always_eager and (wait := _pacer.wait_before_run(gap, above)):
        time.sleep(wait)
    relayed = 0
    try:
        # Clear the nudge first: a commit from now on nudges again, and one before is seen by the claim below.
        cache.delete(NUDGE_KEY)
        report = relay_until_drained(max_seconds=RELAY_TASK_BUDGET_SECONDS)
        relayed = report.claimed
        return report.published
    finally:
        _pacer.run_ended(relayed)


_pacer = Pacer()


@shared_task(name="outbox_app.archive_published_events", time_limit=3600, soft_time_limit=3590, ignore_result=True)
def archive_published_events() -> int:
    """Beat: move events published more than OUTBOX_ARCHIVE_AFTER_DAYS ago to the archive (`prune_outbox` does the
    same on demand); they stay in the event log."""
    return archive_published(older_than=timedelta(days=settings.OUTBOX_ARCHIVE_AFTER_DAYS))
