"""Print the AsyncAPI document of the published events (`manage.py asyncapi > docs/asyncapi.yaml` refreshes it)."""

from typing import Any

from django.core.management.base import BaseCommand

from webhooks_app.asyncapi import render


class Command(BaseCommand):
    help = "Print the AsyncAPI document of the published events, generated from the log's event catalog."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(render(), ending="")
