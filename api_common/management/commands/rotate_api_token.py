"""Replace an API client's token; the old one stops working at once."""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from api_common.models import ApiClient


class Command(BaseCommand):
    help = "Issue a new token for an API client and print it (the last line of the output)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("name")

    def handle(self, *args: Any, name: str, **options: Any) -> None:
        client = ApiClient.objects.active().filter(name=name).first()
        if client is None:
            raise CommandError(f"No active API client named {name!r}.")
        token = client.issue_token()
        client.rotated_at = timezone.now()
        client.save(update_fields=["token_hash", "rotated_at"])
        self.stdout.write(f"Rotated the token of {client.name}; the old token is refused from now on.")
        self.stdout.write(token)
