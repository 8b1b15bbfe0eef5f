"""POST /api/commands/register-customer: the write side over HTTP, with counts proving what was written."""

import json
import uuid

import pytest

from api_common.consistency import HEADER as CONSISTENCY_HEADER
from api_common.consistency import decode_token
from commands_app.models import CustomerRecord, IdempotencyRecord
from outbox_app.models import OutboxEvent
from tests.conftest import command

pytestmark = pytest.mark.django_db

ADA = {"first_name": "Ada", "last_name": "Lovelace", "email": "Ada@Example.com"}


def written() -> tuple[int, int, int]:
    return CustomerRecord.objects.count(), OutboxEvent.objects.count(), IdempotencyRecord.objects.count()


def test_registers_a_customer_and_its_event_in_one_transaction(writer):
    # when
    response = command(writer, "register-customer", ADA, HTTP_X_CORRELATION_ID="corr-123")

    # then
    assert response.status_code == 201
    body = response.json()
    assert body["version"] == 1
    customer = CustomerRecord.objects.get(customer_id=body["customer_id"])
    assert customer.email == "ada@example.com"
    event = OutboxEvent.objects.get()
    assert (event.event_type, event.aggregate_type, event.aggregate_id, event.aggregate_version) == (
        "CustomerRegistered",
        "Customer",
        body["customer_id"],
        1,
    )
    # stored sealed with the customer's key (docs/security.md, "Erasure"), read back opened
    assert "Ada" not in json.dumps(event.payload) and "ada@example.com" not in json.dumps(event.payload)
    assert event.to_envelope()["payload"] == {
        "customer_id": body["customer_id"],
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@example.com",
    }
    assert event.metadata["correlation_id"] == "corr-123"
    assert event.metadata["client_id"] == str(writer.api_client.id)
    assert response["X-Correlation-ID"] == "corr-123"
    assert decode_token(response[CONSISTENCY_HEADER])[0].version == 1
    assert written() == (1, 1, 1)


def test_without_a_token_answers_401_and_writes_nothing(client):
    # when
    response = client.post(
        "/api/commands/register-customer", ADA, content_type="application/json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4())
    )

    # then
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "NOT_AUTHENTICATED"
    assert written() == (0, 0, 0)


def test_with_an_unknown_token_answers_401(client):
    response = client.post(
        "/api/commands/register-customer",
        ADA,
        content_type="application/json",
        HTTP_AUTHORIZATION="Token cqrs_not-a-real-token",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
    )

    assert response.status_code == 401
    assert written() == (0, 0, 0)


def test_a_client_without_the_write_scope_gets_403_and_nothing_is_written(make_api_client):
    # given
    reader = make_api_client("read")

    # when
    response = command(reader, "register-customer", ADA)

    # then
    assert response.status_code == 403
    assert response.json()["code"] == "FORBIDDEN"
    assert written() == (0, 0, 0)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**ADA, "email": "not-an-email"}, "email"),
        ({"first_name": "Ada", "email": "ada@example.com"}, "last_name"),
        ({**ADA, "first_name": "A" * 101}, "first_name"),
        ({**ADA, "last_name": "Love\x00lace"}, "last_name"),
        ({**ADA, "first_name": 12}, None),
    ],
)
def test_invalid_bodies_answer_400_naming_the_field_and_write_nothing(writer, body, field):
    response = command(writer, "register-customer", body)

    if field is None:
        assert response.status_code in (201, 400)  # DRF accepts a number as a string; nothing else is lax
        return
    assert response.status_code == 400
    problem = response.json()
    assert problem["code"] == "VALIDATION_FAILED"
    assert field in [e["field"] for e in problem["errors"]]
    assert written() == (0, 0, 0)


def test_malformed_json_and_wrong_content_type_are_rejected(writer):
    key = str(uuid.uuid4())
    malformed = writer.post(
        "/api/commands/register-customer", "{nope", content_type="application/json", HTTP_IDEMPOTENCY_KEY=key
    )
    wrong_type = writer.post(
        "/api/commands/register-customer", "first_name=Ada", content_type="text/plain", HTTP_IDEMPOTENCY_KEY=key
    )

    assert (malformed.status_code, malformed.json()["code"]) == (400, "MALFORMED_REQUEST")
    assert (wrong_type.status_code, wrong_type.json()["code"]) == (415, "UNSUPPORTED_MEDIA_TYPE")
    assert written() == (0, 0, 0)


@pytest.mark.parametrize(("key", "code"), [(None, "IDEMPOTENCY_KEY_MISSING"), ("abc", "IDEMPOTENCY_KEY_INVALID")])
def test_the_idempotency_key_is_required_and_must_be_a_uuid(writer, key, code):
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}

    response = writer.post("/api/commands/register-customer", ADA, format="json", **headers)

    assert (response.status_code, response.json()["code"]) == (400, code)
    assert written() == (0, 0, 0)


def test_a_taken_email_answers_422_email_taken(writer):
    # given
    assert command(writer, "register-customer", ADA).status_code == 201

    # when
    response = command(writer, "register-customer", {**ADA, "email": "ada@EXAMPLE.com", "first_name": "Other"})

    # then
    assert (response.status_code, response.json()["code"]) == (422, "EMAIL_TAKEN")
    assert written() == (1, 1, 2)  # no customer, no event: only the key's record, which keeps this answer


def test_the_same_key_and_body_replays_the_first_response_and_writes_nothing_new(writer):
    # given
    key = str(uuid.uuid4())
    first = command(writer, "register-customer", ADA, key=key)

    # when
    second = command(writer, "register-customer", ADA, key=key)

    # then
    assert second.status_code == first.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert written() == (1, 1, 1)


def test_the_same_key_with_another_body_answers_422(writer):
    key = str(uuid.uuid4())
    command(writer, "register-customer", ADA, key=key)

    response = command(writer, "register-customer", {**ADA, "first_name": "Augusta"}, key=key)

    assert (response.status_code, response.json()["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")
    assert written() == (1, 1, 1)
