"""Position, lag and parked events of each projection."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from queries_app.lag import status
from queries_app.management.commands._select import projections_named
from queries_app.routers import replica_status


class Command(BaseCommand):
    help = "Show each projection's applied events, lag behind the event log and parked events."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("names", nargs="*", metavar="NAME", help="Projections to show (default: all).")

    def handle(self, *args: Any, names: list[str], **options: Any) -> None:
        header = f"{'projection':<14} {'applied':>9} {'behind':>8} {'oldest unapplied':>17} {'parked':>7}  last event"
        self.stdout.write(header)
        for projection in projections_named(names):
            row = status(projection)
            last = row.last_event_at.isoformat() if row.last_event_at else "-"
            age = f"{row.lag.age_seconds:.1f}s" if row.lag.events_behind else "-"
            self.stdout.write(
                f"{row.projection:<14} {row.events_applied:>9} {row.lag.events_behind:>8} {age:>17} "
                f"{row.parked:>7}  {last}"
            )
        replica = replica_status()
        if replica is not None:
            suffix = "; EVENTUAL reads through it are behind by the lag above plus this" if replica.serves_reads else ""
            self.stdout.write(f"replica: {replica}{suffix}")
