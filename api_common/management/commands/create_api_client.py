"""Create an API client; its new token is the last line of the output (shown once, stored hashed)."""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from api_common.models import SCOPES, ApiClient


def parse_scopes(raw: str) -> list[str]:
    scopes = sorted({s.strip() for s in raw.split(",") if s.strip()})
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise CommandError(f"Unknown scope(s) {', '.join(unknown)}; choose from {', '.join(SCOPES)}.")
    return scopes


class Command(BaseCommand):
    help = "Create an API client and print its token (the last line of the output)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--scopes", default="read", help=f"comma-separated, from {', '.join(SCOPES)}")

    def handle(self, *args: Any, name: str, scopes: str, **options: Any) -> None:
        if ApiClient.objects.filter(name=name).exists():
            raise CommandError(f"An API client named {name!r} exists already; use rotate_api_token.")
        client = ApiClient(name=name, scopes=parse_scopes(scopes))
        token = client.issue_token()
        client.save()
        self.stdout.write(f"Created API client {client.name} ({client.id}) with scopes {','.join(client.scopes)}.")
        self.stdout.write("Its token (shown only now):")
        self.stdout.write(token)
