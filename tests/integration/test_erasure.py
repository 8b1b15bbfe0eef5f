"""A customer's erasure on the append-only log: the key destroyed, read models erased, replay and verify still work,
orders and totals remain, and nothing outside (the event feed, webhook deliveries) shows the personal data."""

import json
import uuid
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from api_common.models import ApiClient
from commands_app.models import CustomerKey, CustomerRecord, IdempotencyRecord
from outbox_app.models import OutboxEvent
from outbox_app.relay import relay_once
from outbox_app.sealing import ERASED
from queries_app.apps import PROJECT_EVENTS_TASK
from queries_app.models import CustomerReadModel, OrderReadModel
from queries_app.projection_engine.apply import project
from tests.conftest import command
from tests.streams import CustomerStream, write_to_log
from webhooks_app import tasks as webhook_tasks
from webhooks_app.apps import FAN_OUT_TASK
from webhooks_app.models import WebhookDelivery, WebhookEndpoint
from webhooks_app.reconcile import fan_out_missed_events
from webhooks_app.signing import new_secret

pytestmark = pytest.mark.django_db

PERSONAL = ("Ada", "Lovelace", "ada@example.org", "call me on Tuesday")


@pytest.fixture
def staff(make_api_client):
    return make_api_client("read", "write", "catalog")


@pytest.fixture
def receiving_endpoint():
    owner = ApiClient(name="receiver-owner", scopes=["webhooks"])
    owner.issue_token()
    owner.save()
    return WebhookEndpoint.objects.create(
        client=owner,
        url="https://receiver.example/hook",
        event_types=["CustomerRegistered", "OrderCancelled", "CustomerErased"],
        secret=new_secret(),
    )


def relay_and_consume() -> None:
    """The relay's real path (claim, open the sealed data, route), its messages consumed in this process."""
    sent: dict[str, list] = {}
    while relay_once(publish=lambda task, envelopes: sent.setdefault(task, []).extend(envelopes)).claimed:
        pass
    project(sent.get(PROJECT_EVENTS_TASK, []))
    webhook_tasks.fan_out_events(sent.get(FAN_OUT_TASK, []))


def ada_with_two_orders(staff) -> tuple[str, list[str]]:
    customer = command(staff, "register-customer", {"first_name": "Ada", "last_name": "Lovelace", "email": PERSONAL[2]})
    customer_id = customer.json()["customer_id"]
    command(staff, "add-product", {"sku": "TEA", "name": "Tea", "description": "", "price": "4.50", "stock": 10})
    order_ids = []
    for quantity in (1, 2):
        body = {"customer_id": customer_id, "lines": [{"sku": "TEA", "quantity": quantity}], "payment_token": "tok_ok"}
        order_ids.append(command(staff, "place-order", body).json()["order_id"])
    cancel = {"order_id": order_ids[0], "reason": PERSONAL[3]}
    assert command(staff, "cancel-order", cancel).status_code == 202
    relay_and_consume()
    return customer_id, order_ids


def stored_text(*tables: str) -> str:
    with connection.cursor() as cursor:
        texts = []
        for table in tables:
            cursor.execute(f"SELECT coalesce(string_agg(t::text, ' '), '') FROM {table} AS t")
            texts.append(cursor.fetchone()[0])
    return " ".join(texts)


def test_erase_a_customer_then_replay_verify_and_read_their_orders(staff, receiving_endpoint):
    # given: Ada, her orders projected, webhook deliveries waiting
    customer_id, order_ids = ada_with_two_orders(staff)
    assert staff.get(f"/api/customers/{customer_id}").json()["first_name"] == "Ada"
    assert any("Ada" in delivery.body for delivery in WebhookDelivery.objects.all())
    assert not any(word in stored_text("outbox_app_outboxevent") for word in PERSONAL), "sealed in the log"

    # when
    call_command("erase_customer", customer_id)
    relay_and_consume()

    # then: the read models show her erased, her orders and totals remain
    customer = staff.get(f"/api/customers/{customer_id}").json()
    assert (customer["first_name"], customer["last_name"], customer["email"]) == (ERASED, ERASED, ERASED)
    orders = [staff.get(f"/api/orders/{order_id}").json() for order_id in order_ids]
    assert [Decimal(order["total"]) for order in orders] == [Decimal("4.50"), Decimal("9.00")]
    assert all(order["customer"]["email"] == order["customer"]["first_name"] == ERASED for order in orders)
    # nothing outside shows her personal data: the feed, the webhook deliveries, the tables
    feed = staff.get("/api/events?limit=500").content.decode()
    bodies = " ".join(WebhookDelivery.objects.values_list("body", flat=True))
    tables = stored_text(
        "outbox_app_outboxevent", "write_customer", "read_customer", "read_order", "read_order_customer"
    )
    for word in PERSONAL:
        assert word not in feed and word not in bodies and word not in tables, word
    assert "CustomerErased" in feed
    # and the log still rebuilds the same read models
    before = list(OrderReadModel.objects.order_by("order_id").values()), list(CustomerReadModel.objects.values())
    call_command("replay_projections")
    call_command("verify_projections")
    after = list(OrderReadModel.objects.order_by("order_id").values()), list(CustomerReadModel.objects.values())
    for old, new in zip(before[0] + before[1], after[0] + after[1], strict=True):
        assert {k: v for k, v in new.items() if old[k] != v and k != "updated_at"} == {}


def test_erasure_is_idempotent(staff, capsys):
    # given
    customer_id, _ = ada_with_two_orders(staff)
    call_command("erase_customer", customer_id)
    events = OutboxEvent.objects.count()

    # when
    call_command("erase_customer", customer_id)

    # then
    assert "erased already" in capsys.readouterr().out
    assert OutboxEvent.objects.count() == events
    assert OutboxEvent.objects.filter(event_type="CustomerErased").count() == 1
    key = CustomerKey.objects.get(customer_id=customer_id)
    assert key.key is None and key.erased_at is not None


@pytest.mark.parametrize(
    ("given", "message"),
    [(str(uuid.uuid4()), "No customer"), ("not-a-uuid", "is not a customer id")],
)
def test_erasure_refuses_what_names_no_customer_and_writes_nothing(db, given, message):
    events, keys = OutboxEvent.objects.count(), CustomerKey.objects.count()
    with pytest.raises(CommandError, match=message):
        call_command("erase_customer", given)
    assert (OutboxEvent.objects.count(), CustomerKey.objects.count()) == (events, keys)


def test_a_customer_changed_after_the_erasure_began_gets_no_new_key(staff):
    # given: an erased customer
    customer_id, order_ids = ada_with_two_orders(staff)
    call_command("erase_customer", customer_id)

    # when: an order of theirs is cancelled with a note (an event that would hold personal data)
    cancel = {"order_id": order_ids[1], "reason": "a note after the erasure"}
    assert command(staff, "cancel-order", cancel).status_code == 202

    # then: stored erased, under no key
    cancelled = OutboxEvent.objects.filter(event_type="OrderCancelled").order_by("created_at").last()
    assert cancelled.payload["note"] == ERASED
    assert CustomerKey.objects.get(customer_id=customer_id).key is None
    assert (
        command(staff, "change-customer-email", {"customer_id": customer_id, "email": "new@example.org"}).status_code
        == 200
    )
    changed = OutboxEvent.objects.get(event_type="CustomerEmailChanged")
    assert changed.payload["email"] == ERASED


def test_events_stored_before_sealing_are_redacted_in_place_and_idempotency_fingerprints_forgotten(staff):
    # given: a customer from before keys existed, with its registration in the log in clear
    customer = CustomerStream()
    CustomerRecord.objects.create(
        customer_id=customer.customer_id, first_name="Ada", last_name="Lovelace", email=PERSONAL[2], version=1
    )
    write_to_log([customer.registered("Ada", "Lovelace", PERSONAL[2])])
    registered = command(staff, "register-customer", {"first_name": "Bo", "last_name": "B", "email": "bo@example.org"})
    bo = registered.json()["customer_id"]

    # when
    call_command("erase_customer", customer.customer_id)
    call_command("erase_customer", bo)

    # then
    row = OutboxEvent.objects.get(aggregate_id=customer.customer_id, event_type="CustomerRegistered")
    assert (row.payload["first_name"], row.payload["email"]) == (ERASED, ERASED)
    assert json.loads(IdempotencyRecord.objects.get(command_type="RegisterCustomer").response_body)["customer_id"] == bo
    assert IdempotencyRecord.objects.get(command_type="RegisterCustomer").request_hash == "erased"
    assert CustomerRecord.objects.get(customer_id=customer.customer_id).first_name == ERASED


def test_an_erasure_whose_fan_out_the_bus_lost_still_rebuilds_the_delivery_bodies(staff, receiving_endpoint, settings):
    # given: deliveries holding Ada's data, the webhooks' reconciliation at the head of the log
    settings.WEBHOOKS_RECONCILE_AFTER_SECONDS = 0
    customer_id, _ = ada_with_two_orders(staff)
    fan_out_missed_events()
    assert any("Ada" in body for body in WebhookDelivery.objects.values_list("body", flat=True))

    # when: the erasure's events reach the projections but their fan-out is lost, then the safety net runs
    call_command("erase_customer", customer_id)
    sent: dict[str, list] = {}
    relay_once(publish=lambda task, envelopes: sent.setdefault(task, []).extend(envelopes))
    project(sent[PROJECT_EVENTS_TASK])
    fan_out_missed_events()

    # then
    bodies = " ".join(WebhookDelivery.objects.values_list("body", flat=True))
    assert "Ada" not in bodies and PERSONAL[2] not in bodies and PERSONAL[3] not in bodies
    assert WebhookDelivery.objects.filter(event_type="CustomerErased").count() == 1
