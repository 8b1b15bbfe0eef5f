"""One trace follows a command: its POST to gunicorn, the relay and the projections in a Celery worker, and the
saga's steps with the commands they send. Both processes export OTLP/HTTP, as they would to a collector, to a
receiver the test runs (tests/otlp.py), configured only by OpenTelemetry's own variables."""

import json
import uuid
from pathlib import Path

import pytest

from api_common.models import ApiClient
from commands_app.models import OrderRecord
from observability import tracing
from outbox_app.models import OutboxEvent
from tests.conftest import command, eventually
from tests.otlp import ReceivedSpan, receiving
from tests.stack import Stack, gunicorn, wait_until_idle

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stack]


ORDER_EVENTS = {"OrderPlaced", "InventoryReserved", "PaymentAuthorized", "OrderConfirmed"}


def tracing_to(endpoint: str, service: str) -> dict[str, str]:
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_SERVICE_NAME": service, "OTEL_BSP_SCHEDULE_DELAY": "100"}


def test_one_trace_shows_a_command_through_the_relay_the_worker_the_projections_and_the_saga(stack_env, tmp_path: Path):
    with receiving() as receiver:
        # given: gunicorn and a worker, tracing to the receiver; an API client
        web_env = {**stack_env, **tracing_to(receiver.endpoint, "cqrs-web")}
        stack = Stack(env={**stack_env, **tracing_to(receiver.endpoint, "cqrs-worker")}, logs=tmp_path)
        stack.start_worker(concurrency=2)
        client = ApiClient(name=f"traced-{uuid.uuid4().hex[:8]}", scopes=["read", "write", "catalog"])
        token = client.issue_token()
        client.save()
        try:
            with gunicorn(web_env, tmp_path) as web:

                def post(name: str, body: dict) -> dict:
                    headers = {
                        "Authorization": f"Token {token}",
                        "Idempotency-Key": str(uuid.uuid4()),
                        "Content-Type": "application/json",
                    }
                    answer = web.request("POST", f"/api/commands/{name}", json.dumps(body).encode(), headers)
                    assert answer.status in (200, 201, 202), answer.body
                    return json.loads(answer.body)

                product = {"sku": "TRACED", "name": "Lamp", "description": "", "price": "9.90", "stock": 5}
                post("add-product", product)
                customer = post("register-customer", {"first_name": "A", "last_name": "B", "email": "t@x.org"})

                # when: an order goes through the saga to confirmed
                order = post(
                    "place-order",
                    {
                        "customer_id": customer["customer_id"],
                        "lines": [{"sku": "TRACED", "quantity": 1}],
                        "payment_token": "tok_ok",
                    },
                )
                eventually(lambda: OrderRecord.objects.filter(order_id=order["order_id"], status="confirmed").exists())

                # then: the place-order command's trace holds the whole journey, from both processes
                (placed,) = eventually(lambda: [s for s in receiver.spans if s.name == "command PlaceOrder"])
                journey = {
                    ("cqrs-web", "command PlaceOrder"),
                    ("cqrs-web", "middleware AuthorizationMiddleware"),
                    ("cqrs-web", "middleware IdempotencyMiddleware"),
                    ("cqrs-web", "INSERT"),  # SQL
                    ("cqrs-worker", "outbox publish"),
                    ("cqrs-worker", "project events"),
                    ("cqrs-worker", "projection orders"),
                    ("cqrs-worker", "saga order events"),
                    ("cqrs-worker", "saga advance"),
                    ("cqrs-worker", "saga step reserve_inventory forward"),
                    ("cqrs-worker", "command ReserveInventory"),
                    ("cqrs-worker", "saga step authorize_payment forward"),
                    ("cqrs-worker", "command AuthorizePayment"),
                    ("cqrs-worker", "saga step confirm_order forward"),
                    ("cqrs-worker", "command ConfirmOrder"),
                }

                def whole_journey() -> list[ReceivedSpan] | None:
                    spans = receiver.in_trace(placed.trace_id)
                    seen = {(span.service, span.name) for span in spans}
                    # every event of the order projected within this trace, the saga's own included
                    projected = {
                        event_type
                        for span in spans
                        if span.name == "project events"
                        for event_type in span.attributes["events.types"]  # type: ignore[attr-defined]
                    }
                    return spans if journey <= seen and projected >= ORDER_EVENTS else None

                spans = eventually(whole_journey, timeout=30)
                roots = [span for span in spans if not span.parent_id]
                assert [(root.service, root.name.split()[0]) for root in roots] == [("cqrs-web", "POST")]
                assert any(
                    span.service == "cqrs-web" and span.attributes.get("db.system") == "postgresql" for span in spans
                )
                assert any(span.service == "cqrs-web" and span.attributes.get("db.system") == "redis" for span in spans)

                # ...as one tree: every span's parent is in the trace, once the last exports arrived
                def connected() -> bool:
                    spans = receiver.in_trace(placed.trace_id)
                    ids = {span.span_id for span in spans}
                    return all(not span.parent_id or span.parent_id in ids for span in spans)

                eventually(connected, timeout=10)
        finally:
            wait_until_idle()
            stack.stop_all()


def test_tracing_is_off_unless_opentelemetry_variables_ask_for_it(writer):
    # given: the test process, which has no OTEL_* variables
    assert tracing.exporter_names({}) == []
    assert tracing.exporter_names({"OTEL_TRACES_EXPORTER": "none"}) == []
    assert tracing.exporter_names({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}) == []
    assert tracing.exporter_names({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}) == ["otlp_proto_http"]
    assert tracing.exporter_names({"OTEL_TRACES_EXPORTER": "otlp,console", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}) == [
        "otlp_proto_grpc",
        "console",
    ]
    assert not tracing.enabled()

    # when
    command(writer, "register-customer", {"first_name": "A", "last_name": "B", "email": "off@x.org"})

    # then: no span, so nothing to carry
    (event,) = OutboxEvent.objects.all()
    assert "traceparent" not in event.metadata
    assert event.to_envelope()["traceparent"] is None
