"""Idempotency as Stripe defines it: the first answer to a key is the answer for that key, byte for byte.

A business error (a 4xx from a handler that ran) is kept like a success; a request refused before the handler
ran (400, 401, 403, 429) and a server error keep nothing, so the key may be used again; a saga step's key
keeps successes only. Each test says which rows were written.
"""

import uuid

import pytest
import redis
from django.core.cache import caches
from django_redis import get_redis_connection
from redis.backoff import NoBackoff
from redis.retry import Retry

from commands_app.bootstrap import build_mediator
from commands_app.commands import RegisterCustomer
from commands_app.mediator import CommandContext, HandlerCall, HandlerRegistry
from commands_app.middleware.idempotency_store import CacheFastPath, RedisFastPath
from commands_app.models import CustomerRecord, IdempotencyRecord, OrderRecord
from commands_app.result import Error, Ok
from outbox_app.models import OutboxEvent
from tests.conftest import command
from tests.factories import CustomerRecordFactory, ProductRecordFactory

pytestmark = pytest.mark.django_db
ADA = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}


@pytest.fixture(autouse=True)
def clean_redis():
    get_redis_connection("default").flushdb()


def rows() -> dict[str, int]:
    return {
        "customers": CustomerRecord.objects.count(),
        "orders": OrderRecord.objects.count(),
        "outbox": OutboxEvent.objects.count(),
        "idempotency": IdempotencyRecord.objects.count(),
    }


def test_a_success_is_replayed_byte_for_byte_by_either_tier(writer):
    # given
    key = str(uuid.uuid4())
    first = command(writer, "register-customer", ADA, key=key)

    # when
    from_redis = command(writer, "register-customer", ADA, key=key)
    get_redis_connection("default").flushdb()
    from_the_record = command(writer, "register-customer", ADA, key=key)

    # then: the same bytes (the record keeps the body's text: jsonb would put "version" first), token and status
    assert first.status_code == from_redis.status_code == from_the_record.status_code == 201
    assert first.content == from_redis.content == from_the_record.content
    assert first["X-Consistency-Token"] == from_the_record["X-Consistency-Token"]
    assert (from_redis["Idempotent-Replayed"], from_the_record["Idempotent-Replayed"]) == ("true", "true")
    assert rows() == {"customers": 1, "orders": 0, "outbox": 1, "idempotency": 1}


def test_a_business_error_is_the_keys_answer_byte_for_byte_even_once_the_command_would_succeed(writer):
    # given: an order naming a product that does not exist yet
    customer = CustomerRecordFactory()
    order = {
        "customer_id": str(customer.customer_id),
        "lines": [{"sku": "LAMP-1", "quantity": 1}],
        "payment_token": "t",
    }
    key = str(uuid.uuid4())
    first = command(writer, "place-order", order, key=key)
    ProductRecordFactory(sku="LAMP-1")

    # when: the same request again, from Redis and then from the record, and once with a new key
    from_redis = command(writer, "place-order", order, key=key)
    get_redis_connection("default").flushdb()
    from_the_record = command(writer, "place-order", order, key=key)
    with_a_new_key = command(writer, "place-order", order)

    # then: the key answers what it first answered, the first correlation id included; a new key places the order
    assert (first.status_code, first.json()["code"]) == (422, "UNKNOWN_PRODUCT")
    assert first.content == from_redis.content == from_the_record.content
    assert from_the_record.json()["correlation_id"] == first["X-Correlation-ID"] != from_the_record["X-Correlation-ID"]
    assert from_the_record["Content-Type"] == "application/problem+json"
    assert from_the_record["Idempotent-Replayed"] == "true"
    assert with_a_new_key.status_code == 202
    assert rows() == {"customers": 1, "orders": 1, "outbox": 1, "idempotency": 2}


def test_another_body_with_a_key_that_keeps_an_error_is_refused_as_reused(writer):
    # given
    key = str(uuid.uuid4())
    CustomerRecordFactory(email="ada@example.com")
    assert command(writer, "register-customer", ADA, key=key).json()["code"] == "EMAIL_TAKEN"

    # when
    other = command(writer, "register-customer", {**ADA, "email": "grace@example.com"}, key=key)

    # then
    assert (other.status_code, other.json()["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")
    assert rows()["customers"] == 1


@pytest.mark.parametrize("refusal", ["invalid body", "no token", "no scope", "rate limited"])
def test_a_request_refused_before_the_handler_ran_keeps_nothing(make_api_client, client, settings, refusal):
    # given: a key first sent with a request that is refused before its handler runs
    key = str(uuid.uuid4())
    writer = make_api_client("write")
    refused = {
        "invalid body": lambda: command(writer, "register-customer", {**ADA, "email": 5}, key=key),
        "no token": lambda: command(client, "register-customer", ADA, key=key),
        "no scope": lambda: command(make_api_client("read"), "register-customer", ADA, key=key),
        "rate limited": lambda: rate_limited(make_api_client("write"), settings, key),
    }[refusal]()

    # when: the same key with a request that is served
    served = command(writer, "register-customer", ADA, key=key)

    # then
    assert refused.status_code == {"invalid body": 400, "no token": 401, "no scope": 403, "rate limited": 429}[refusal]
    assert served.status_code == 201 and "Idempotent-Replayed" not in served
    assert rows() == {"customers": 1, "orders": 0, "outbox": 1, "idempotency": 1}


def rate_limited(http, settings, key):
    settings.API_RATE_LIMIT_PER_MINUTE = 0
    answer = command(http, "register-customer", ADA, key=key)
    settings.API_RATE_LIMIT_PER_MINUTE = 1200
    return answer


def flaky_then_registering():
    """A handler that fails like a server first (503), then registers: as a payment provider that was down."""
    calls = []

    def handler(command: RegisterCustomer, call: HandlerCall):
        calls.append(command)
        if len(calls) == 1:
            return Error("PAYMENT_PROVIDER_UNAVAILABLE", "down for a moment")
        return Error("EMAIL_TAKEN", "taken") if len(calls) == 2 else Ok({"attempt": len(calls)})

    return handler


def mediator_with(handler, fast_path):
    registry = HandlerRegistry()
    registry.register(RegisterCustomer, handler)
    return build_mediator(registry=registry, fast_path=fast_path)


API = CommandContext(
    client_id="api-client", scopes=frozenset({"write"}), correlation_id="c", keeps_business_errors=True
)
SAGA = CommandContext(client_id="saga", scopes=frozenset({"write"}), correlation_id="c")


@pytest.mark.parametrize("fast_path", ["redis", "down"])
def test_a_server_error_keeps_nothing_and_an_api_clients_business_error_is_kept(fast_path):
    # given
    tier = (
        RedisFastPath(get_redis_connection("default"))
        if fast_path == "redis"
        else RedisFastPath(
            redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
        )
    )
    mediator = mediator_with(flaky_then_registering(), tier)
    register = RegisterCustomer(idempotency_key=uuid.uuid4(), first_name="A", last_name="B", email="a@b.c")

    # when
    answers = [mediator.send(register, API) for _ in range(3)]

    # then: the 503 was tried again; the 422 that followed is the key's answer from then on
    assert [(a.status_code, a.replayed) for a in answers] == [(503, False), (422, False), (422, True)]
    assert IdempotencyRecord.objects.get().response_error["code"] == "EMAIL_TAKEN"


def test_a_saga_steps_key_keeps_successes_only_so_a_failed_step_runs_again():
    # given: the saga's context, as sagas_app's executor builds it
    mediator = mediator_with(flaky_then_registering(), CacheFastPath(caches["default"]))
    step = RegisterCustomer(idempotency_key=uuid.uuid4(), first_name="A", last_name="B", email="a@b.c")

    # when
    answers = [mediator.send(step, SAGA) for _ in range(4)]

    # then: neither the 503 nor the 422 was kept (an operator's retry of the step runs it again), the success is
    assert [(a.status_code, a.replayed) for a in answers] == [(503, False), (422, False), (201, False), (201, True)]
    assert answers[3].body == {"attempt": 3}
    assert IdempotencyRecord.objects.get().status_code == 201
