"""Delete published events older than a number of days, in batches; pending and dead events are kept.

The event log is what projections rebuild from: prune only what no rebuild will need.
"""

import sys
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm  # type: ignore[import-untyped]

from outbox_app.operations import prune_published


class Command(BaseCommand):
    help = "Delete outbox events published more than --older-than DAYS ago (never pending or dead ones)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", type=float, required=True, metavar="DAYS", help="Age in days.")
        parser.add_argument("--dry-run", action="store_true", help="Count what would be deleted; delete nothing.")
        parser.add_argument("--batch-size", type=int, default=1000, help="Events deleted per transaction.")

    def handle(self, *args: Any, older_than: float, dry_run: bool, batch_size: int, **options: Any) -> None:
        if older_than <= 0:
            raise CommandError("--older-than must be a positive number of days.")
        if batch_size <= 0:
            raise CommandError("--batch-size must be positive.")
        age = timedelta(days=older_than)
        if dry_run:
            count = prune_published(older_than=age, batch_size=batch_size, dry_run=True)
        else:
            total = prune_published(older_than=age, dry_run=True)
            # A progress bar with the rate and the time left, on stderr so stdout keeps the summary line.
            with tqdm(total=total, unit="event", desc="pruning", file=sys.stderr, disable=total == 0) as bar:
                count = prune_published(older_than=age, batch_size=batch_size, progress=bar.update)
        verb = "would delete" if dry_run else "deleted"
        self.stdout.write(f"{verb} {count} published event(s) older than {older_than:g} day(s)")
