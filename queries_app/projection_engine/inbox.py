"""The inbox's window: entries older than PROJECTION_INBOX_WINDOW_SECONDS are pruned, so the inbox stays bounded.

Pruning is safe because the inbox never decides alone what is a duplicate. Every apply first locks the
aggregate's position (the last version the projection applied) and treats any version at or below it as a
duplicate before the inbox is asked (apply.py); the position lives as long as the read model. The inbox entry,
written in the same transaction, is a second guard for the window in which a redelivery is plausible (broker
redeliveries, countdown retries, the log's redelivery after PROJECTION_REDELIVER_AFTER_SECONDS) and a record of
what each projection applied recently. A redelivered event older than the window meets its position and changes
nothing (docs/read-models.md, "The inbox's window").
"""

from datetime import timedelta

from django.utils import timezone

from queries_app.models import InboxEntry


def prune_inbox(*, older_than: timedelta, batch_size: int = 5000) -> int:
    """Delete inbox entries processed before now - older_than, oldest first, one short transaction per batch.

    Entries are taken in id order (the order they were written, so about the order of processed_at) from the
    primary key's index: no index on processed_at is needed, and a batch that meets the window stops the run
    (an older entry written just behind a newer one goes on the next run). Returns how many were deleted.
    """
    cutoff = timezone.now() - older_than
    pruned = 0
    while True:
        oldest = InboxEntry.objects.order_by("id").values("id")[:batch_size]
        deleted, _ = InboxEntry.objects.filter(id__in=oldest, processed_at__lt=cutoff).delete()
        pruned += deleted
        if deleted < batch_size:
            return pruned
