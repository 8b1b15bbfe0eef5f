"""A second saga, defined in the tests only: it proves the executor runs any definition, not just fulfilment's.

A product's promotion, keyed by its sku: `discount` sets the promotion's price (compensated by setting the list
price back), then `restock` takes the promotion's stock in (refused over the product's stock limit, with a
timeout read from a setting; nothing to compensate, so it is not compensated). Both through the mediator, as the
fulfilment saga's commands are.
"""

from decimal import Decimal
from typing import Any
from uuid import UUID

from commands_app import commands
from sagas_app import definitions, lifecycle
from sagas_app.domain import Refusal, SagaDefinition, Step, StepInput, Timeout

PROMOTION = "promotion"
DISCOUNT, RESTOCK = "discount", "restock"
STOCK_LIMIT, RESTOCK_TIMEOUT = "stock_limit", "restock_timeout"
TIMEOUT_SETTING = "PROMOTION_RESTOCK_TIMEOUT_SECONDS"


def _price(step: StepInput, field: str) -> commands.ChangeProductPrice:
    return commands.ChangeProductPrice(
        idempotency_key=step.idempotency_key, sku=step.correlation_id, price=Decimal(step.context[field])
    )


def restock_command(step: StepInput) -> commands.RestockProduct:
    return commands.RestockProduct(
        idempotency_key=step.idempotency_key, sku=step.correlation_id, quantity=step.context["quantity"]
    )


DEFINITION = SagaDefinition(
    saga_type=PROMOTION,
    steps=(
        Step(
            DISCOUNT,
            forward=lambda step: _price(step, "promotion_price"),
            compensation=lambda step: _price(step, "list_price"),
        ),
        Step(
            RESTOCK,
            forward=restock_command,
            timeout=Timeout(60.0, RESTOCK_TIMEOUT, setting=TIMEOUT_SETTING),
            refusals=(Refusal(STOCK_LIMIT, error_code="STOCK_LIMIT_EXCEEDED"),),
        ),
    ),
    succeeded="promoted",
    compensated="withdrawn",
    cancellation_reasons=("withdrawn_by_operator",),
    scopes=frozenset({"catalog"}),
)


def register() -> None:
    definitions.register(DEFINITION)


def start(product_added: dict[str, Any], *, promotion_price: Decimal, quantity: int) -> UUID | None:
    """Start the promotion of the product that `product_added` (its ProductAdded envelope) added."""
    payload = product_added["payload"]
    return lifecycle.start(
        PROMOTION,
        payload["sku"],
        context={"list_price": payload["price"], "promotion_price": str(promotion_price), "quantity": quantity},
        cause=product_added,
    )
