"""Entry points for child processes (multiprocessing spawn): no Django import before django.setup()."""

import os
import uuid
from typing import Any


def restock_racing(database_url: str, barrier: Any, results: Any, index: int) -> None:
    """Restock the product RACE at expected_version 1, released by the barrier at the same moment as a rival."""
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from commands_app.bootstrap import build_mediator
    from commands_app.commands import RestockProduct
    from commands_app.mediator import CommandContext

    command = RestockProduct(idempotency_key=uuid.uuid4(), sku="RACE", quantity=10 + index, expected_version=1)
    context = CommandContext(client_id=f"p{index}", scopes=frozenset({"catalog"}), correlation_id="race")
    mediator = build_mediator()
    barrier.wait(timeout=30)
    outcome = mediator.send(command, context)
    results[index] = (outcome.status_code, outcome.error.code if outcome.error else None)
