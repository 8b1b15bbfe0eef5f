"""`manage.py status`: the status document (operations_app/status.py); exit code 0 ok, 2 failing, 3 unknown."""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from operations_app import status


class Command(BaseCommand):
    help = "Print the service's status (outbox, projections, sagas, beat, dependencies); non-zero exit unless ok."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check",
            action="append",
            choices=sorted(status.CHECKS),
            help="Run only this check (repeatable), e.g. `--check beat` for beat's container healthcheck.",
        )
        parser.add_argument("--json", action="store_true", help="Print the document as JSON (as /healthz serves it).")
        parser.add_argument(
            "--measure",
            action="store_true",
            help="Measure the projection lag now instead of reading beat's last measurement (a pass over the log).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["measure"]:
            status.measure_lag_now()
        document = status.run(options["check"] or status.CHECKS)
        if options["json"]:
            self.stdout.write(json.dumps(document, indent=2))
        else:
            self.stdout.write(f"status: {document['status']}")
            for name, check in document["checks"].items():
                self.stdout.write(f"  {name:<12} {check['status']:<8} {check['summary']}")
        code = status.EXIT_CODES[document["status"]]
        if code:
            raise SystemExit(code)
