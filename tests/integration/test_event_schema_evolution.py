"""Old schema versions in the log on PostgreSQL: projected live, replayed, verified and listed in their current form."""

import importlib
import json
from decimal import Decimal
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection

from commands_app.models import OrderRecord, ProductRecord
from outbox_app.log import mark_published_in_log_order, read_log
from outbox_app.models import OutboxEvent
from outbox_app.sealing import ERASED
from queries_app.models import CustomerReadModel, OrderReadModel, ParkedEvent
from queries_app.projection_engine.apply import project
from queries_app.projection_engine.projection import ApplyContext
from queries_app.projection_engine.rows import DatabaseRows, live_table
from queries_app.projections import PROJECTIONS
from tests.conftest import command
from tests.streams import CustomerStream, OrderStream, ProductStream, line, write_to_log

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "events"
TOKEN = "tok_v1_card_secret_4242"
scrub_migration = importlib.import_module("commands_app.migrations.0007_scrub_payment_tokens_from_the_log")


@pytest.fixture
def reader(make_api_client):
    return make_api_client("read")


def a_voided_order_stored_before_the_rename() -> tuple[str, list]:
    ada, teapot = CustomerStream(), ProductStream()
    order = OrderStream(customer_id=ada.customer_id)
    placed = order.placed(line(teapot.sku, 2, "19.90"))
    authorized = order.payment_authorized("auth_7")
    refunded = order.event(
        "PaymentRefunded", {"order_id": order.order_id, "authorization_id": "auth_7", "amount": "39.80"}
    )
    cancelled = order.cancelled("payment_timeout")
    cancelled["payload"]["note"] = ""
    return order.order_id, [ada.registered(), teapot.added(), placed, authorized, refunded, cancelled]


def an_order_placed_with_a_token_in_v1() -> tuple[str, list]:
    ada, teapot = CustomerStream(), ProductStream()
    order = OrderStream(customer_id=ada.customer_id)
    placed = order.placed(line(teapot.sku, 1, "19.90"))
    placed["schema_version"] = 1
    placed["payload"] = {name: value for name, value in placed["payload"].items() if name != "payment_reference"}
    placed["payload"]["payment_token"] = TOKEN
    return order.order_id, [ada.registered(), teapot.added(), placed]


def everything_stored_as_text() -> str:
    """The outbox and every read table, as PostgreSQL prints them (what a dump would hold)."""
    with connection.cursor() as cursor:
        tables = ["outbox_app_outboxevent", "read_customer", "read_order", "read_order_customer", "read_parked_event"]
        texts = []
        for table in tables:
            cursor.execute(f"SELECT coalesce(string_agg(t::text, ' '), '') FROM {table} AS t")
            texts.append(cursor.fetchone()[0])
    return " ".join(texts)


def test_a_v1_payment_refunded_in_the_log_is_projected_replayed_and_verified_as_a_voided_payment(reader):
    # given: the log as it was before PaymentVoided
    order_id, stored = a_voided_order_stored_before_the_rename()
    delivered = write_to_log(stored)
    assert OutboxEvent.objects.filter(event_type="PaymentRefunded", schema_version=1).count() == 1

    # when: projected live as a message published before the deploy carries it (the old form), then rebuilt
    project(stored)
    live = OrderReadModel.objects.get(order_id=order_id)
    OrderReadModel.objects.filter(order_id=order_id).update(payment_status="authorized")
    call_command("replay_projections")

    # then
    rebuilt = OrderReadModel.objects.get(order_id=order_id)
    assert live.payment_status == rebuilt.payment_status == "voided"
    assert [step["event"] for step in rebuilt.timeline][-2] == "PaymentVoided"
    call_command("verify_projections")
    # and the log's readers hand it out in its current form
    (refunded,) = [e for e in delivered if e["aggregate_type"] == "Order" and e["aggregate_version"] == 3]
    assert (refunded["event_type"], refunded["schema_version"]) == ("PaymentVoided", 2)


def test_the_feed_lists_a_renamed_event_under_its_current_name_and_filters_by_it(reader):
    # given
    order_id, stored = a_voided_order_stored_before_the_rename()
    write_to_log(stored)
    mark_published_in_log_order(list(OutboxEvent.objects.order_by("created_at").values_list("event_id", flat=True)))

    # when
    voided = reader.get("/api/events?type=PaymentVoided").json()["events"]
    everything = reader.get("/api/events?limit=100").json()["events"]

    # then
    assert [(e["event_type"], e["schema_version"], e["aggregate_id"]) for e in voided] == [
        ("PaymentVoided", 2, order_id)
    ]
    assert "PaymentRefunded" not in json.dumps(everything)
    assert reader.get("/api/events?type=PaymentRefunded").status_code == 400


def test_a_v1_order_placed_with_a_payment_token_is_read_replayed_and_scrubbed_without_it(reader):
    # given: an order placed when OrderPlaced carried the token, and a copy of it parked by a projection
    order_id, stored = an_order_placed_with_a_token_in_v1()
    delivered = write_to_log(stored)
    assert TOKEN in everything_stored_as_text()
    ParkedEvent.objects.create(
        projection="orders",
        event_id=stored[2]["event_id"],
        event_type="OrderPlaced",
        aggregate_type="Order",
        aggregate_id=order_id,
        aggregate_version=1,
        envelope=stored[2],
        reason=ParkedEvent.Reason.GAP,
        error="",
        attempts=1,
    )

    # when: every reader reads it, then the migration scrubs the stored copies, then a replay rebuilds
    assert TOKEN not in json.dumps(delivered)
    project(stored)
    mark_published_in_log_order([e["event_id"] for e in stored])
    assert TOKEN not in json.dumps([entry.envelope for entry in read_log(limit=100).entries])
    assert TOKEN not in reader.get("/api/events?limit=100").content.decode()
    scrub_migration.scrub(apps, connection.schema_editor())
    call_command("replay_projections")
    call_command("verify_projections")

    # then: the token is nowhere, and the order reads as any other
    assert TOKEN not in everything_stored_as_text()
    row = OutboxEvent.objects.get(event_type="OrderPlaced")
    assert row.schema_version == 1 and "payment_token" not in row.payload
    assert row.to_envelope()["schema_version"] == 2
    assert OrderReadModel.objects.get(order_id=order_id).total == Decimal("19.90")
    assert CustomerReadModel.objects.get(customer_id=stored[0]["aggregate_id"]).orders_count == 1


def test_the_scrub_is_idempotent_and_keeps_the_orders_payment_reference(writer):
    # given: an order placed through the API (v2), whose event is then rewritten as a v1 with a token
    customer = command(writer, "register-customer", {"first_name": "Ada", "last_name": "L", "email": "a@x.org"})
    customer_id = customer.json()["customer_id"]
    ProductRecord.objects.create(sku="TEA", name="Tea", price="2.00", stock=5, version=1)
    body = {"customer_id": customer_id, "lines": [{"sku": "TEA", "quantity": 1}], "payment_token": "tok_ok"}
    order_id = command(writer, "place-order", body).json()["order_id"]
    row = OutboxEvent.objects.get(event_type="OrderPlaced")
    reference = row.payload.pop("payment_reference")
    OutboxEvent.objects.filter(pk=row.pk).update(schema_version=1, payload={**row.payload, "payment_token": TOKEN})

    # when
    scrub_migration.scrub(apps, connection.schema_editor())
    scrub_migration.scrub(apps, connection.schema_editor())

    # then
    row.refresh_from_db()
    assert row.payload["payment_reference"] == reference == OrderRecord.objects.get(order_id=order_id).payment_reference
    assert "payment_token" not in row.payload


# What each fixture leaves in the read models, beyond applying without an error.
EXPECTED = {
    "PaymentRefunded/v1": lambda order, customer: order.payment_status == "voided",
    "PaymentVoided/v2": lambda order, customer: order.payment_status == "voided",
    "OrderPlaced/v1": lambda order, customer: "tok_" not in json.dumps(order.timeline) and order.status == "pending",
    "OrderCancelled/v1": lambda order, customer: order.status == "cancelled",
    "OrderConfirmed/v1": lambda order, customer: order.status == "confirmed" and customer.lifetime_value > 0,
    "PaymentAuthorized/v1": lambda order, customer: order.payment_status == "authorized",
    "CustomerEmailChanged/v1": lambda order, customer: customer.email == "ada@lovelace.example",
    "CustomerErased/v1": lambda order, customer: (
        (customer.first_name, customer.email) == (ERASED, ERASED) and order.customer_email == ERASED
    ),
}


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*/v*.json")), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_each_fixture_is_projected_by_every_projection_that_follows_its_aggregate(path):
    # given: the fixtures' customer, product and order, projected
    customer, product, placed = (
        json.loads((FIXTURES / name).read_text())
        for name in ("CustomerRegistered/v1.json", "ProductAdded/v1.json", "OrderPlaced/v2.json")
    )
    project([customer, product, placed])
    envelope = json.loads(path.read_text())

    # when: applied in its stored form, straight through each projection's handlers (outside the version guard)
    for projection in PROJECTIONS:
        if envelope["aggregate_type"] in projection.follows:
            rows = DatabaseRows(live_table)
            projection.apply(ApplyContext(rows=rows), envelope)
            rows.flush()

    # then
    order = OrderReadModel.objects.get(order_id=placed["aggregate_id"])
    view = CustomerReadModel.objects.get(customer_id=placed["payload"]["customer_id"])
    assert EXPECTED.get(f"{path.parent.name}/{path.stem}", lambda order, customer: True)(order, view)
