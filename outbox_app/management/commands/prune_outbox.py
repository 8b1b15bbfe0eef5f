"""Archive published events older than a number of days, in batches; pending and dead events stay in the outbox.

Archived events leave the hot outbox table (what the relay and the commands write) for the archive table, and stay
in the event log: replay, verify and the event feed read both (outbox_app/log.py). `--older-than 0` archives every
published event.
"""

import sys
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm  # type: ignore[import-untyped]

from outbox_app.operations import archive_published


class Command(BaseCommand):
    help = (
        "Move outbox events published more than --older-than DAYS ago to the archive (never pending or dead ones); "
        "they stay in the event log."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than", type=float, required=True, metavar="DAYS", help="Age in days (0: every published event)."
        )
        parser.add_argument("--dry-run", action="store_true", help="Count what would be archived; move nothing.")
        parser.add_argument("--batch-size", type=int, default=1000, help="Events moved per transaction.")

    def handle(self, *args: Any, older_than: float, dry_run: bool, batch_size: int, **options: Any) -> None:
        if older_than < 0:
            raise CommandError("--older-than must be zero or a positive number of days.")
        if batch_size <= 0:
            raise CommandError("--batch-size must be positive.")
        age = timedelta(days=older_than)
        if dry_run:
            count = archive_published(older_than=age, batch_size=batch_size, dry_run=True)
        else:
            total = archive_published(older_than=age, dry_run=True)
            # A progress bar with the rate and the time left, on stderr so stdout keeps the summary line.
            with tqdm(total=total, unit="event", desc="archiving", file=sys.stderr, disable=total == 0) as bar:
                count = archive_published(older_than=age, batch_size=batch_size, progress=bar.update)
        verb = "would archive" if dry_run else "archived"
        self.stdout.write(f"{verb} {count} published event(s) older than {older_than:g} day(s)")
