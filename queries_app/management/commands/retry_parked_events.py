"""Apply parked events again (after fixing what made them fail, or once their gap is filled)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from queries_app.management.commands._select import projections_named
from queries_app.models import ParkedEvent
from queries_app.projection_engine.apply import retry_parked


class Command(BaseCommand):
    help = "Retry parked events, oldest version of each aggregate first; those that apply are removed."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "names", nargs="*", metavar="NAME", help="Projections whose events to retry (default: all)."
        )
        parser.add_argument("--event-id", action="append", default=[], help="Only this event (repeatable).")

    def handle(self, *args: Any, names: list[str], event_id: list[str], **options: Any) -> None:
        parked = ParkedEvent.objects.filter(projection__in=[p.name for p in projections_named(names)])
        if event_id:
            parked = parked.filter(event_id__in=event_id)
        report = retry_parked(list(parked))
        self.stdout.write(f"applied {report.applied} event(s); {report.still_parked} still parked")
