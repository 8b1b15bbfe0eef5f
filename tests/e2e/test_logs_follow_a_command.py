"""One grep for a correlation id follows a command through the web process, the relay, the projections
and the saga, in structured JSON log lines."""

import json
import logging
import uuid

import pytest

from tests.conftest import command, eventually

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stack]


def json_lines_with(text: str, needle: str) -> list[dict]:
    found = []
    for line in text.splitlines():
        if needle in line and line.startswith("{"):
            try:
                found.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return found


def test_a_correlation_id_reaches_every_log_line_of_an_order(celery_stack, make_api_client, caplog):
    # given
    shop = make_api_client("read", "write", "catalog")
    trace = f"trace-{uuid.uuid4()}"
    assert (
        command(
            shop, "add-product", {"sku": "LOG-1", "name": "Lamp", "description": "", "price": "5.00", "stock": 3}
        ).status_code
        == 201
    )
    customer = command(
        shop, "register-customer", {"first_name": "A", "last_name": "B", "email": "log@example.com"}
    ).json()

    # when
    with caplog.at_level(logging.INFO):
        placed = command(
            shop,
            "place-order",
            {
                "customer_id": customer["customer_id"],
                "lines": [{"sku": "LOG-1", "quantity": 1}],
                "payment_token": "tok_ok",
            },
            HTTP_X_CORRELATION_ID=trace,
        )
    order_id = placed.json()["order_id"]
    eventually(lambda: shop.get(f"/api/orders/{order_id}").json().get("status") == "confirmed", timeout=30)

    # then: the web process logged the command with the id
    web = [r.msg for r in caplog.records if isinstance(r.msg, dict) and r.msg.get("correlation_id") == trace]
    assert any(line.get("event") == "command.completed" for line in web)

    # and the worker logged the relay, the projections and the saga's steps with it
    def worker_events() -> set[str]:
        lines = json_lines_with((celery_stack.logs / "worker.log").read_text(errors="replace"), trace)
        return {line["event"] for line in lines}

    events = eventually(
        lambda: (found := worker_events()) >= {"outbox.relay_batch", "projection.batch", "saga.completed"} and found,
        timeout=20,
    )
    assert "saga.step_sent" in events
    assert "command.completed" in events  # the saga's own commands, through the same pipeline
