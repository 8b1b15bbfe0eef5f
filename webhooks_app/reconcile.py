"""The webhooks' safety net: follow the event log in order and make sure every delivery it calls for exists.

The fan-out task gets events from the bus, and the bus is a pipe, not a store: a fan-out retried with a countdown
lives in a worker's memory and dies with a SIGKILLed worker (celery/celery#1810), and a broker can lose a message
it had taken. So beat runs `fan_out_missed_events()` every WEBHOOKS_RECONCILE_INTERVAL seconds: it reads the log
from its position (kept in the FanOutPosition row), in log order, up to the events published
WEBHOOKS_RECONCILE_AFTER_SECONDS ago (those the bus has had every chance to bring), and fans them out again. A
delivery is created once per event and endpoint, so this only creates what the bus lost, and hands it out.

The log's order never lets an event slip behind the position (outbox_app/log.py): every event published later
is given a position after it.
"""

from datetime import timedelta

import structlog
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from outbox_app.log import head_position, read_log
from webhooks_app.deliveries import fan_out
from webhooks_app.erasure import redact_erased_customers
from webhooks_app.models import FanOutPosition

log = structlog.get_logger(__name__)

PAGE = 500
MAX_PAGES = 20


def fan_out_missed_events() -> int:
    """Fan out the settled events after the kept position; how many deliveries this created (what the bus lost)."""
    settled_before = timezone.now() - timedelta(seconds=settings.WEBHOOKS_RECONCILE_AFTER_SECONDS)
    created = 0
    with transaction.atomic():
        kept = FanOutPosition.objects.select_for_update().filter(pk=1).first()
        if kept is None:
            # First run: nothing was missed before the safety net existed; start at the head of the log.
            FanOutPosition.objects.bulk_create(
                [FanOutPosition(pk=1, log_position=head_position())], ignore_conflicts=True
            )
            return 0
        position = kept.log_position
        for _ in range(MAX_PAGES):
            page = read_log(after_position=position, limit=PAGE)
            settled = []
            for entry in page.entries:
                if entry.published_at >= settled_before:
                    break
                settled.append(entry)
            if settled:
                envelopes = [entry.envelope for entry in settled]
                # An erasure whose fan-out the bus lost still rebuilds the bodies kept for retries.
                redact_erased_customers(envelopes)
                created += len(fan_out(envelopes))
                position = settled[-1].position
            if len(settled) < len(page.entries) or not page.has_more:
                break
        kept.log_position = position
        kept.save(update_fields=["log_position", "updated_at"])
    if created:
        log.warning("webhooks.fanned_out_from_the_log", deliveries=created, position=position)
    return created
