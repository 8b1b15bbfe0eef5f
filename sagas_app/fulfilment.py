"""The order fulfilment saga's commands: which command each step sends, forward and to compensate."""

from uuid import UUID

from commands_app import commands
from sagas_app import domain


def command_for(
    *, step: str, direction: str, order_id: UUID, reason: str, idempotency_key: UUID, note: str
) -> commands.Command:
    fields = {"idempotency_key": idempotency_key, "order_id": order_id}
    match (step, direction):
        case (domain.RESERVE_INVENTORY, domain.FORWARD):
            return commands.ReserveInventory(**fields)
        case (domain.AUTHORIZE_PAYMENT, domain.FORWARD):
            return commands.AuthorizePayment(**fields)
        case (domain.CONFIRM_ORDER, domain.FORWARD):
            return commands.ConfirmOrder(**fields)
        case (domain.AUTHORIZE_PAYMENT, domain.COMPENSATE):
            return commands.VoidPayment(**fields)
        case (domain.RESERVE_INVENTORY, domain.COMPENSATE):
            return commands.ReleaseInventory(**fields)
        case (domain.PLACE_ORDER, domain.COMPENSATE):
            return commands.CancelOrder(**fields, reason=reason, note=note)
    raise ValueError(f"The fulfilment saga has no command for {step}:{direction}.")
