"""`manage.py sagas list | resume ID | abort ID`: what operators do with sagas from a shell."""

from argparse import ArgumentParser
from typing import Any
from uuid import UUID

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.timesince import timesince

from sagas_app import domain, lifecycle
from sagas_app.models import Saga
from sagas_app.tasks import queue_advance


class Command(BaseCommand):
    help = "List sagas, resume one (a failed one tries its step again), or abort one (it compensates)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        subcommands = parser.add_subparsers(dest="subcommand", required=True)
        listing = subcommands.add_parser("list", help="The newest sagas, optionally of one status.")
        listing.add_argument("--status", choices=[s.value for s in Saga.Status])
        listing.add_argument("--limit", type=int, default=50)
        resume = subcommands.add_parser("resume", help="Retry a failed saga, or run a waiting one now.")
        resume.add_argument("saga_id", type=UUID)
        abort = subcommands.add_parser("abort", help="Compensate a saga and cancel its order.")
        abort.add_argument("saga_id", type=UUID)
        abort.add_argument(
            "--reason", default="", help="One of its definition's cancellation reasons (default: the first)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        match options["subcommand"]:
            case "list":
                self._list(options["status"], options["limit"])
            case "resume":
                self._operate(options["saga_id"], lifecycle.retry, "resumed")
            case "abort":
                self._operate(
                    options["saga_id"], lambda saga_id: lifecycle.abort(saga_id, options["reason"]), "aborted"
                )

    def _list(self, status: str | None, limit: int) -> None:
        sagas = Saga.objects.order_by("-created_at")
        if status:
            sagas = sagas.filter(status=status)
        self.stdout.write(
            f"{'saga':36}  {'type':12}  {'correlation id':36}  {'status':12}  {'step':17}  {'outcome':9}  "
            f"{'reason':18}  age"
        )
        for saga in sagas[:limit]:
            self.stdout.write(
                f"{saga.saga_id!s:36}  {saga.saga_type:12}  {saga.correlation_id:36}  {saga.status:12}  "
                f"{saga.current_step:17}  "
                f"{saga.outcome or '-':9}  {saga.reason or '-':18}  {timesince(saga.created_at)}"
                + (f"\n    last error: {saga.last_error}" if saga.status == domain.FAILED else "")
            )

    def _operate(self, saga_id: UUID, operation: Any, done: str) -> None:
        with transaction.atomic():
            try:
                operated = operation(saga_id)
            except ValueError as error:
                raise CommandError(str(error)) from error
            if not operated:
                raise CommandError(f"Saga {saga_id} does not exist or is completed.")
            transaction.on_commit(lambda: queue_advance([saga_id]))
        self.stdout.write(f"Saga {saga_id} {done}.")
