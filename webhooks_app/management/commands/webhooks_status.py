"""Print the webhooks' health: pending deliveries, the oldest due one's wait, failed deliveries, endpoints."""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from webhooks_app.operations import read_status


class Command(BaseCommand):
    help = "Show pending and failed webhook deliveries, the oldest due delivery's wait, and endpoints by status."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print one JSON object instead of text.")

    def handle(self, *args: Any, **options: Any) -> None:
        status = read_status()
        if options["json"]:
            self.stdout.write(json.dumps(status.as_dict(), sort_keys=True))
            return
        age = status.oldest_due_age_seconds
        self.stdout.write(f"pending: {status.pending} delivery(ies)")
        self.stdout.write(f"oldest due: {'none' if age is None else f'{age:.1f}s'}")
        self.stdout.write(f"failed: {status.failed} delivery(ies)")
        self.stdout.write(f"endpoints: {status.enabled_endpoints} enabled, {status.disabled_endpoints} disabled")
