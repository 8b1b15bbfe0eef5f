"""The result mapper: runs the handler in a unit of work and maps its Result to a CommandOutcome.

This is the one place where error codes meet HTTP statuses.
"""

from collections.abc import Callable, Mapping
from typing import Any

from api_common.consistency import HEADER as CONSISTENCY_HEADER
from api_common.consistency import AggregateVersion, encode_token
from commands_app.commands import Command
from commands_app.mediator import CommandContext, CommandOutcome, HandlerCall, HandlerRegistry
from commands_app.result import Error, Ok
from commands_app.unit_of_work import UnitOfWork

ERROR_STATUS: dict[str, int] = {
    "VALIDATION_FAILED": 400,
    "FORBIDDEN": 403,
    "CUSTOMER_NOT_FOUND": 404,
    "PRODUCT_NOT_FOUND": 404,
    "ORDER_NOT_FOUND": 404,
    "VERSION_CONFLICT": 409,
    "ORDER_NOT_PENDING": 409,
    "ORDER_ALREADY_CONFIRMED": 409,
    "ORDER_ALREADY_CANCELLED": 409,
    "IDEMPOTENCY_IN_PROGRESS": 409,
    "IDEMPOTENCY_KEY_REUSED": 422,
    "EMAIL_TAKEN": 422,
    "PAYMENT_PROVIDER_UNAVAILABLE": 503,
}
DEFAULT_ERROR_STATUS = 422

UnitOfWorkFactory = Callable[[Command, CommandContext], UnitOfWork]


def status_for(error: Error) -> int:
    return ERROR_STATUS.get(error.code, DEFAULT_ERROR_STATUS)


def metadata_for(command: Command, context: CommandContext) -> dict[str, Any]:
    return {
        "correlation_id": context.correlation_id,
        "causation_id": str(command.command_id),
        "client_id": context.client_id,
        "command": type(command).__name__,
    }


def default_unit_of_work(command: Command, context: CommandContext) -> UnitOfWork:
    return UnitOfWork(metadata=metadata_for(command, context))


class ResultMapper:
    def __init__(
        self,
        *,
        registry: HandlerRegistry,
        success_status: Mapping[type[Command], int],
        uow_factory: UnitOfWorkFactory = default_unit_of_work,
    ) -> None:
        self.registry = registry
        self.success_status = dict(success_status)
        self.uow_factory = uow_factory

    def __call__(self, command: Command, context: CommandContext) -> CommandOutcome:
        handler = self.registry.handler_for(command)
        uow = self.uow_factory(command, context)
        result = handler(command, HandlerCall(uow=uow, context=context))
        if isinstance(result, Error):
            return CommandOutcome(status_code=status_for(result), error=result)
        assert isinstance(result, Ok)
        written = tuple(uow.written)
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
