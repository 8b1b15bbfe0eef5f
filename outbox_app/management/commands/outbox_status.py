"""Print the outbox's health: backlog, oldest pending age, publish rate over the last minute, dead events."""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from outbox_app.operations import read_status


class Command(BaseCommand):
    help = "Show the outbox backlog, the age of the oldest pending event, the publish rate and the dead count."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print one JSON object instead of text.")

    def handle(self, *args: Any, json: bool, **options: Any) -> None:
        status = read_status()
        if json:
            self.stdout.write(_dumps(status.as_dict()))
            return
        age = status.oldest_pending_age_seconds
        self.stdout.write(f"backlog: {status.pending} event(s)")
        self.stdout.write(f"oldest pending: {'none' if age is None else f'{age:.1f}s'}")
        self.stdout.write(
            f"publish rate: {status.publish_rate_per_second:.2f} events/s "
            f"({status.published_last_minute} in the last 60s)"
        )
        self.stdout.write(f"dead: {status.dead} event(s)")
        if status.blocked_behind_dead:
            self.stdout.write(f"blocked behind dead: {status.blocked_behind_dead} pending event(s)")


def _dumps(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True)
