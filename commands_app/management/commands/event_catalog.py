"""Print the write side's event catalog as JSON, or write it where the read side reads it (`make event-catalog`)."""

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from commands_app.events import event_catalog


class Command(BaseCommand):
    help = "The event catalog (each aggregate type's events, schema versions and payload fields) as JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", type=Path, help="write it to this file (else print it)")

    def handle(self, *args: Any, output: Path | None = None, **options: Any) -> None:
        catalog = json.dumps(event_catalog(), indent=2) + "\n"
        if output is None:
            self.stdout.write(catalog, ending="")
        else:
            output.write_text(catalog)
