"""One trace follows a command: its POST to gunicorn, the relay and the projections in a Celery worker, and the
saga's steps with the commands they send. Both processes export OTLP/HTTP, as they would to a collector, to an
endpoint the test runs (tests/otlp.py) that hands the spans to OpenTelemetry's in-memory exporter; the processes
are configured only by OpenTelemetry's own variables."""

import json
import uuid
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan

from api_common.models import ApiClient
from commands_app.models import OrderRecord
from observability import tracing
from outbox_app.models import OutboxEvent
from tests.conftest import command, eventually
from tests.otlp import receiving, service
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
                confirmed = OrderRecord.objects.filter(order_id=order["order_id"], status="confirmed")
                eventually(confirmed.exists, timeout=60)

                # then: the place-order command's trace holds the whole journey, from both processes
                (placed,) = eventually(lambda: [s for s in receiver.finished() if s.name == "command PlaceOrder"])
                trace_id = placed.context.trace_id
                journey = {
                    ("cqrs-web", "command PlaceOrder"),
                    ("cqrs-web", "middleware AuthorizationMiddleware"),
                    ("cqrs-web", "middleware IdempotencyMiddleware"),
                    ("cqrs-web", "INSERT"),  # SQL
                    ("cqrs-worker", "outbox publish"),
                    ("cqrs-worker", "project events"),
                    ("cqrs-worker", "projection orders"),
                    ("cqrs-worker", "saga events"),
                    ("cqrs-worker", "saga advance"),
                    ("cqrs-worker", "saga step reserve_inventory forward"),
                    ("cqrs-worker", "command ReserveInventory"),
                    ("cqrs-worker", "saga step authorize_payment forward"),
                    ("cqrs-worker", "command AuthorizePayment"),
                    ("cqrs-worker", "saga step confirm_order forward"),
                    ("cqrs-worker", "command ConfirmOrder"),
                }

                def whole_journey() -> list[ReadableSpan] | None:
                    spans = receiver.in_trace(trace_id)
                    seen = {(service(span), span.name) for span in spans}
                    # every event of the order projected within this trace, the saga's own included
                    projected = {
                        event_type
                        for span in spans
                        if span.name == "project events"
                        for event_type in span.attributes["events.types"]  # type: ignore[index, union-attr]
                    }
                    return spans if journey <= seen and projected >= ORDER_EVENTS else None

                spans = eventually(whole_journey, timeout=60)
                roots = [span for span in spans if span.parent is None]
                assert [(service(root), root.name.split()[0]) for root in roots] == [("cqrs-web", "POST")]
                web_systems = {
                    (span.attributes or {}).get("db.system") for span in spans if service(span) == "cqrs-web"
                }
                assert {"postgresql", "redis"} <= web_systems
                # SQL shown as written, from every process: a query of several statements, whose values sqlkit
                # quoted in itself, with placeholders as any other; no value (the product's SKU) in a span
                statements = [str((span.attributes or {}).get("db.statement", "")) for span in spans]
                assert any('INSERT INTO "write_order"' in statement for statement in statements), statements
                assert not [statement for statement in statements if "TRACED" in statement]

                # ...as one tree: every span's parent is in the trace, once the last exports arrived
                def connected() -> bool:
                    spans = receiver.in_trace(trace_id)
                    ids = {span.context.span_id for span in spans}
                    return all(span.parent is None or span.parent.span_id in ids for span in spans)

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
