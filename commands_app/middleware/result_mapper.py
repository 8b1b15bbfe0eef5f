"""The result mapper: runs the handler in a unit of work and maps its Result to a CommandOutcome.

This is where a handler's answer meets the transaction: an Ok stages the changed aggregates' events as outbox
rows (the owner of the transaction then writes everything and commits); an Error keeps nothing (what the handler
staged is dropped, whoever owns the transaction). The transaction
is the one the context carries (begun by the idempotency middleware, or by the sender); with none, the result
mapper begins and commits its own. Error codes meet HTTP statuses here, from the registered aggregates' tables
(commands_app/aggregates.py) and the collaborators' own.
"""

from collections.abc import Callable, Mapping
from typing import Any

from api_common.consistency import HEADER as CONSISTENCY_HEADER
from api_common.consistency import AggregateVersion, encode_token
from commands_app.commands import Command
from commands_app.mediator import CommandContext, CommandOutcome, HandlerRegistry
from commands_app.ports import StagingUnitOfWork
from commands_app.result import Error, Ok
from sqlkit import Transaction

# A code no table lists: a business rule refused the command.
DEFAULT_ERROR_STATUS = 422

UnitOfWorkFactory = Callable[[Command, CommandContext, Transaction], StagingUnitOfWork]


def metadata_for(command: Command, context: CommandContext) -> dict[str, Any]:
    return {
        "correlation_id": context.correlation_id,
        "causation_id": str(command.command_id),
        "client_id": context.client_id,
        "command": type(command).__name__,
    }


class ResultMapper:
    def __init__(
        self,
        *,
        registry: HandlerRegistry,
        success_status: Mapping[type[Command], int],
        error_status: Mapping[str, int],
        unit_of_work: UnitOfWorkFactory,
    ) -> None:
        self.registry = registry
        self.success_status = dict(success_status)
        self.error_status = dict(error_status)
        self.unit_of_work = unit_of_work

    def status_for(self, error: Error) -> int:
        return self.error_status.get(error.code, DEFAULT_ERROR_STATUS)

    def __call__(self, command: Command, context: CommandContext) -> CommandOutcome:
        if context.transaction is not None:
            return self._run(command, context, context.transaction)
        with Transaction.begin() as transaction:
            outcome = self._run(command, context, transaction)
            if not outcome.ok:
                transaction.roll_back()
            return outcome

    def _run(self, command: Command, context: CommandContext, transaction: Transaction) -> CommandOutcome:
        handler = self.registry.handler_for(command)
        uow = self.unit_of_work(command, context, transaction)
        mark = transaction.staged_so_far()
        result = handler(command, uow)
        if isinstance(result, Error):
            transaction.drop_staged_since(mark)
            return CommandOutcome(status_code=self.status_for(result), error=result)
        assert isinstance(result, Ok)
        written = uow.stage_events()
        headers = {}
        if written:
            versions = [AggregateVersion(w.aggregate_type, w.aggregate_id, w.version) for w in written]
            headers[CONSISTENCY_HEADER] = encode_token(versions)
        return CommandOutcome(
            status_code=self.success_status.get(type(command), 200),
            body=dict(result.value),
            headers=headers,
            written=written,
        )
