"""Revoke an API client: its token is refused on its next request."""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from api_common.authentication import forget_clients
from api_common.models import ApiClient


class Command(BaseCommand):
    help = "Revoke an API client's token."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("name")

    def handle(self, *args: Any, name: str, **options: Any) -> None:
        updated = ApiClient.objects.active().filter(name=name).update(revoked_at=timezone.now())
        if not updated:
            raise CommandError(f"No active API client named {name!r}.")
        forget_clients()
        self.stdout.write(f"Revoked {name}.")
