"""Print the write side's event catalog as JSON: what `make event-catalog` writes to queries_app/event_catalog.json."""

import json
from typing import Any

from django.core.management.base import BaseCommand

from commands_app.events import event_catalog


class Command(BaseCommand):
    help = "Print the event catalog (each aggregate type's events, schema versions and payload fields) as JSON."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(json.dumps(event_catalog(), indent=2))
