"""The consistency map: every query endpoint, its level, where its data comes from and its current lag."""

from typing import Any

from django.core.management.base import BaseCommand

from queries_app.consistency_map import current_rows, table


class Command(BaseCommand):
    help = "Print endpoint -> consistency level -> data source -> current lag (docs/consistency.md holds the same)."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(table(current_rows()))
