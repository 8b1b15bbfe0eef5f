"""AuthorizePayment and VoidPayment through the real pipeline, against the fake provider (state in real Redis)."""

import json
import uuid
from decimal import Decimal

import pytest
from django.contrib import admin
from django.core.cache import cache

from commands_app.bootstrap import build_mediator
from commands_app.commands import AuthorizePayment, CancelOrder, OrderLineRequest, PlaceOrder, VoidPayment
from commands_app.mediator import CommandContext
from commands_app.models import OrderRecord, PaymentToken
from commands_app.payments.fake import FakePaymentProvider
from outbox_app.models import OutboxEvent
from tests.factories import CustomerRecordFactory, ProductRecordFactory

pytestmark = pytest.mark.django_db

SYSTEM = CommandContext(client_id="saga", scopes=frozenset({"system", "write"}), correlation_id="pay")
PROVIDER = FakePaymentProvider(cache=cache, timeout_seconds=0.05)


@pytest.fixture
def mediator():
    return build_mediator(payment_provider=PROVIDER)


def an_order(mediator, token="tok_ok"):
    customer = CustomerRecordFactory()
    product = ProductRecordFactory(price=Decimal("12.50"))
    placed = mediator.send(
        PlaceOrder(
            idempotency_key=uuid.uuid4(),
            customer_id=customer.customer_id,
            lines=(OrderLineRequest(product.sku, 2),),
            payment_token=token,
        ),
        SYSTEM,
    )
    return uuid.UUID(placed.body["order_id"])


def events(order_id: uuid.UUID) -> list[tuple[str, dict]]:
    rows = OutboxEvent.objects.filter(aggregate_id=str(order_id)).order_by("aggregate_version")
    return [(row.event_type, row.payload) for row in rows]


def test_an_authorization_is_recorded_once_and_a_retry_with_the_same_key_replays_it(mediator):
    # given
    order_id = an_order(mediator)
    key = uuid.uuid4()

    # when
    first = mediator.send(AuthorizePayment(idempotency_key=key, order_id=order_id), SYSTEM)
    again = mediator.send(AuthorizePayment(idempotency_key=key, order_id=order_id), SYSTEM)

    # then
    assert first.status_code == 200
    assert first.body["authorized"] is True
    assert again.replayed and again.body == first.body
    authorization_id = first.body["authorization_id"]
    assert OrderRecord.objects.get().authorization_id == authorization_id
    assert events(order_id)[-1] == (
        "PaymentAuthorized",
        {"order_id": str(order_id), "authorization_id": authorization_id, "amount": "25.00"},
    )
    assert [(a.authorization_id, a.amount, a.voided) for a in PROVIDER.authorizations(order_id)] == [
        (authorization_id, Decimal("25.00"), False)
    ]


def test_an_authorized_order_answers_ok_to_a_new_key_without_a_second_authorization(mediator):
    order_id = an_order(mediator)
    mediator.send(AuthorizePayment(idempotency_key=uuid.uuid4(), order_id=order_id), SYSTEM)

    second = mediator.send(AuthorizePayment(idempotency_key=uuid.uuid4(), order_id=order_id), SYSTEM)

    assert (second.status_code, second.body["authorized"]) == (200, True)
    assert len(PROVIDER.authorizations(order_id)) == 1


def test_a_declined_token_is_an_answer_recorded_on_the_order(mediator):
    order_id = an_order(mediator, "tok_declined")

    outcome = mediator.send(AuthorizePayment(idempotency_key=uuid.uuid4(), order_id=order_id), SYSTEM)

    assert (outcome.status_code, outcome.body["authorized"], outcome.body["reason"]) == (200, False, "card_declined")
    assert events(order_id)[-1] == ("PaymentDeclined", {"order_id": str(order_id), "reason": "card_declined"})
    assert OrderRecord.objects.get().payment_status == "declined"
    assert PROVIDER.authorizations(order_id) == []


def test_a_flaky_provider_is_a_503_that_writes_nothing_until_the_same_key_gets_through(mediator):
    order_id = an_order(mediator, "tok_flaky")
    key = uuid.uuid4()

    outcomes = [mediator.send(AuthorizePayment(idempotency_key=key, order_id=order_id), SYSTEM) for _ in range(3)]

    assert [o.status_code for o in outcomes] == [503, 503, 200]
    assert outcomes[0].error.code == "PAYMENT_PROVIDER_UNAVAILABLE"
    assert [e for e, _ in events(order_id)] == ["OrderPlaced", "PaymentAuthorized"]
    assert len(PROVIDER.authorizations(order_id)) == 1
    assert PROVIDER.attempts(str(key)) == 3


def test_a_provider_that_never_answers_is_unavailable_after_the_provider_timeout(mediator):
    order_id = an_order(mediator, "tok_timeout")

    outcome = mediator.send(AuthorizePayment(idempotency_key=uuid.uuid4(), order_id=order_id), SYSTEM)

    assert (outcome.status_code, outcome.error.code) == (503, "PAYMENT_PROVIDER_UNAVAILABLE")
    assert OrderRecord.objects.get().payment_status == "none"


def test_a_cancelled_order_is_not_authorized(mediator):
    order_id = an_order(mediator)
    mediator.send(CancelOrder(idempotency_key=uuid.uuid4(), order_id=order_id, reason="customer_request"), SYSTEM)

    outcome = mediator.send(AuthorizePayment(idempotency_key=uuid.uuid4(), order_id=order_id), SYSTEM)

    assert (outcome.status_code, outcome.error.code) == (409, "ORDER_NOT_PENDING")
    assert PROVIDER.authorizations(order_id) == []


def test_voiding_gives_the_authorization_back_once(mediator):
    # given
    order_id = an_order(mediator)
    authorized = mediator.send(AuthorizePayment(idempotency_key=uuid.uuid4(), order_id=order_id), SYSTEM)

    # when
    voided = mediator.send(VoidPayment(idempotency_key=uuid.uuid4(), order_id=order_id), SYSTEM)
    again = mediator.send(VoidPayment(idempotency_key=uuid.uuid4(), order_id=order_id), SYSTEM)

    # then
    authorization_id = authorized.body["authorization_id"]
    assert (voided.status_code, voided.body["voided"]) == (200, True)
    assert (again.status_code, again.body["voided"]) == (200, False)
    assert [e for e, _ in events(order_id)] == ["OrderPlaced", "PaymentAuthorized", "PaymentVoided"]
    assert events(order_id)[-1][1] == {
        "order_id": str(order_id),
        "authorization_id": authorization_id,
        "amount": "25.00",
    }
    assert [a.voided for a in PROVIDER.authorizations(order_id)] == [True]
    assert OrderRecord.objects.get().payment_status == "voided"


def test_voiding_an_order_without_an_authorization_is_a_no_op(mediator):
    order_id = an_order(mediator)

    outcome = mediator.send(VoidPayment(idempotency_key=uuid.uuid4(), order_id=order_id), SYSTEM)

    assert (outcome.status_code, outcome.body["voided"]) == (200, False)
    assert [e for e, _ in events(order_id)] == ["OrderPlaced"]


def test_payment_commands_need_the_system_scope(mediator):
    order_id = an_order(mediator)
    client = CommandContext(client_id="web", scopes=frozenset({"read", "write", "catalog"}), correlation_id="x")

    authorize = mediator.send(AuthorizePayment(idempotency_key=uuid.uuid4(), order_id=order_id), client)
    void = mediator.send(VoidPayment(idempotency_key=uuid.uuid4(), order_id=order_id), client)

    assert (authorize.status_code, void.status_code) == (403, 403)


def kept_tokens() -> dict[uuid.UUID, str]:
    return dict(PaymentToken.objects.values_list("order_id", "token"))


def test_the_token_is_kept_apart_from_the_order_and_its_event_names_a_reference(mediator):
    # when
    order_id = an_order(mediator, token="tok_ok")

    # then: the token is in its own table only; the order and OrderPlaced (version 2) carry the reference
    order = OrderRecord.objects.get()
    (placed,) = OutboxEvent.objects.filter(event_type="OrderPlaced")
    assert kept_tokens() == {order_id: "tok_ok"}
    assert order.payment_reference.startswith("pm_") and placed.payload["payment_reference"] == order.payment_reference
    assert placed.schema_version == 2
    assert "tok_ok" not in json.dumps([placed.payload, placed.metadata])
    assert "tok_ok" not in repr(
        PlaceOrder(idempotency_key=uuid.uuid4(), customer_id=uuid.uuid4(), lines=(), payment_token="tok_ok")
    )


@pytest.mark.parametrize(("token", "authorized"), [("tok_ok", True), ("tok_declined", False)])
def test_the_token_is_deleted_once_the_authorization_is_decided(mediator, token, authorized):
    # given
    order_id = an_order(mediator, token=token)

    # when
    answer = mediator.send(AuthorizePayment(idempotency_key=uuid.uuid4(), order_id=order_id), SYSTEM)

    # then
    assert answer.body["authorized"] is authorized
    assert kept_tokens() == {}


def test_the_token_outlives_a_provider_that_did_not_answer_and_is_deleted_when_the_retry_decides(mediator):
    # given: tok_flaky is unavailable twice per idempotency key
    order_id = an_order(mediator, token="tok_flaky")
    key = uuid.uuid4()

    # when
    attempts = [mediator.send(AuthorizePayment(idempotency_key=key, order_id=order_id), SYSTEM) for _ in range(3)]

    # then
    assert [a.status_code for a in attempts] == [503, 503, 200]
    assert attempts[-1].body["authorized"] is True
    assert kept_tokens() == {}


def test_the_token_is_deleted_when_the_order_is_cancelled(mediator):
    # given
    order_id = an_order(mediator)

    # when
    mediator.send(CancelOrder(idempotency_key=uuid.uuid4(), order_id=order_id, reason="customer_request"), SYSTEM)

    # then
    assert kept_tokens() == {}


def test_an_order_whose_token_is_gone_is_declined_and_the_provider_never_called(mediator):
    # given: the token was deleted (an operator purged it, or it outlived a retention policy)
    order_id = an_order(mediator, token="tok_ok")
    PaymentToken.objects.all().delete()

    # when
    answer = mediator.send(AuthorizePayment(idempotency_key=uuid.uuid4(), order_id=order_id), SYSTEM)

    # then: a decided, documented outcome the saga compensates (payment_declined), not a stuck order
    assert (answer.status_code, answer.body["authorized"], answer.body["reason"]) == (
        200,
        False,
        "payment_token_unavailable",
    )
    assert OrderRecord.objects.get().payment_status == "declined"
    assert PROVIDER.authorizations(order_id) == []


def test_the_admin_shows_no_payment_token(mediator, admin_client):
    # given
    order_id = an_order(mediator, token="tok_ok")
    placed = OutboxEvent.objects.get(event_type="OrderPlaced")

    # when
    pages = [
        admin_client.get(f"/admin/commands_app/orderrecord/{order_id}/change/"),
        admin_client.get(f"/admin/outbox_app/outboxevent/{placed.event_id}/change/"),
        admin_client.get("/admin/"),
    ]

    # then: the order and its event are there, by their reference; the tokens' table is not registered at all
    assert [page.status_code for page in pages] == [200, 200, 200]
    assert all(b"tok_ok" not in page.content for page in pages)
    assert OrderRecord.objects.get().payment_reference.encode() in pages[0].content
    assert PaymentToken not in admin.site._registry
