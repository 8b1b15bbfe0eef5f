"""Erase a customer's personal data: `manage.py erase_customer CUSTOMER_ID` (docs/operations.md, "Erasure")."""

from typing import Any
from uuid import UUID

from django.core.management.base import BaseCommand, CommandError, CommandParser

from commands_app.erasure import UnknownCustomer, erase_customer


class Command(BaseCommand):
    help = (
        "Erase a customer (GDPR's right to erasure): destroy the key that seals the customer's personal data in the "
        "event log, forget it in the write model, and record CustomerErased. Idempotent; orders and totals remain."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("customer_id", help="the customer's id (a UUID)")

    def handle(self, *args: Any, customer_id: str, **options: Any) -> None:
        try:
            wanted = UUID(customer_id)
        except ValueError:
            raise CommandError(f"{customer_id!r} is not a customer id (a UUID): nothing erased.") from None
        try:
            erasure = erase_customer(wanted)
        except UnknownCustomer:
            raise CommandError(f"No customer {wanted}: nothing erased.") from None
        if erasure.erased_now:
            self.stdout.write(f"Customer {wanted} erased.")
        else:
            self.stdout.write(f"Customer {wanted} was erased already: nothing changed.")
        self.stdout.write(
            f"Events stored before sealing, redacted in place: {erasure.events_redacted}; "
            f"idempotency fingerprints forgotten: {erasure.idempotency_records_forgotten}."
        )
