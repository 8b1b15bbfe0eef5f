"""Idempotency in two tiers against real Redis and PostgreSQL: replay, reuse, in-progress, flush, outage, expiry."""

import json
import threading
import uuid
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_redis import get_redis_connection
from redis.backoff import NoBackoff
from redis.retry import Retry
from uuid_utils.compat import uuid7

from commands_app.bootstrap import build_mediator
from commands_app.commands import RegisterCustomer
from commands_app.domain.customer import Customer
from commands_app.mediator import CommandContext, HandlerCall, HandlerRegistry
from commands_app.middleware.idempotency import fingerprint
from commands_app.middleware.idempotency_store import RedisFastPath, StoredResponse
from commands_app.models import CustomerRecord, IdempotencyRecord
from commands_app.result import Ok
from commands_app.tasks import prune_idempotency_records
from commands_app.unit_of_work import advisory_lock_key
from outbox_app.models import OutboxEvent
from tests.conftest import command
from tests.races import sent_at_once

NO_RETRY = Retry(NoBackoff(), 0)

ADA = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}
CONTEXT = CommandContext(client_id="client-1", scopes=frozenset({"write"}), correlation_id="c")


def counts() -> tuple[int, int, int]:
    return CustomerRecord.objects.count(), OutboxEvent.objects.count(), IdempotencyRecord.objects.count()


@pytest.fixture(autouse=True)
def clean_redis():
    get_redis_connection("default").flushdb()


@pytest.mark.django_db
def test_a_redis_flush_never_lets_a_command_take_effect_twice(writer):
    # given
    key = str(uuid.uuid4())
    first = command(writer, "register-customer", ADA, key=key)

    # when: the fast tier forgets everything
    get_redis_connection("default").flushdb()
    again = command(writer, "register-customer", ADA, key=key)

    # then: the durable record answers
    assert (again.status_code, again.json()) == (201, first.json())
    assert again["Idempotent-Replayed"] == "true"
    assert counts() == (1, 1, 1)


@pytest.mark.django_db
def test_the_fast_tier_answers_a_replay_without_touching_the_database(writer, django_assert_max_num_queries):
    key = str(uuid.uuid4())
    first = command(writer, "register-customer", ADA, key=key)

    with django_assert_max_num_queries(1):  # the token lookup only
        again = command(writer, "register-customer", ADA, key=key)

    assert again.json() == first.json()


@pytest.mark.django_db
def test_keys_are_scoped_per_api_client(make_api_client):
    key = str(uuid.uuid4())
    one, two = make_api_client("write"), make_api_client("write")

    first = command(one, "register-customer", ADA, key=key)
    second = command(two, "register-customer", {**ADA, "email": "other@example.com"}, key=key)

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["customer_id"] != second.json()["customer_id"]
    assert counts() == (2, 2, 2)


@pytest.mark.django_db
def test_authorization_is_checked_before_a_stored_response_is_replayed(writer):
    key = str(uuid.uuid4())
    assert command(writer, "register-customer", ADA, key=key).status_code == 201
    client = writer.api_client
    client.scopes = ["read"]
    client.save()

    replay = command(writer, "register-customer", ADA, key=key)

    assert (replay.status_code, replay.json()["code"]) == (403, "FORBIDDEN")


def test_the_completion_is_sent_without_a_reply_and_leaves_the_connection_clean():
    # given: a fast tier on a pool of one connection, so every call below shares it
    one_connection = redis.Redis(
        connection_pool=redis.BlockingConnectionPool.from_url(settings.REDIS_URL, max_connections=1, timeout=1)
    )
    fast_path = RedisFastPath(one_connection)
    assert fast_path.claim("c:k", "hash", 30).state == "claimed"

    # when
    fast_path.complete("c:k", "hash", StoredResponse(201, {"id": 1}, {"X-Consistency-Token": "t"}), 60)

    # then: no stray reply is waiting on the connection: the next answers are the right ones
    claim = fast_path.claim("c:k", "hash", 30)
    assert (claim.state, claim.status_code, claim.body, claim.headers) == (
        "done",
        201,
        {"id": 1},
        {"X-Consistency-Token": "t"},
    )
    assert one_connection.ping() is True
    assert one_connection.ttl("idempotency:c:k") > 30


@pytest.mark.django_db
def test_with_redis_down_commands_still_run_on_the_durable_record_alone(caplog):
    # given: a fast tier pointing at a Redis that does not answer
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, socket_timeout=0.2, retry=NO_RETRY)
    mediator = build_mediator(fast_path=RedisFastPath(dead))
    register = RegisterCustomer(idempotency_key=uuid.uuid4(), first_name="A", last_name="B", email="a@b.c")

    # when
    first = mediator.send(register, CONTEXT)
    replay = mediator.send(RegisterCustomer(**{**register.__dict__, "command_id": uuid.uuid4()}), CONTEXT)

    # then
    assert (first.status_code, replay.status_code, replay.replayed) == (201, 201, True)
    assert replay.body == first.body
    assert counts() == (1, 1, 1)
    assert "idempotency.degraded" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_the_same_key_while_the_first_request_runs_answers_409_and_the_command_runs_once(make_api_client):
    # given: the first request is held inside its handler by a lock this test owns
    writer = make_api_client("write")
    key = str(uuid.uuid4())
    holder = connections.create_connection("default")
    holder.connect()
    holder.set_autocommit(False)
    with holder.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [advisory_lock_key("customer-email", ADA["email"])])
    results = {}
    first = threading.Thread(target=lambda: results.update(first=command(writer, "register-customer", ADA, key=key)))
    first.start()
    try:
        fast_tier = get_redis_connection("default")
        for _ in range(500):
            if fast_tier.hget(f"idempotency:{writer.api_client.id}:{key}", "state") == b"in_progress":
                break
            threading.Event().wait(0.01)

        # when
        second = command(writer, "register-customer", ADA, key=key)

        # then
        assert (second.status_code, second.json()["code"]) == (409, "IDEMPOTENCY_IN_PROGRESS")
        assert second["Retry-After"] == "1"
    finally:
        holder.rollback()
        holder.close()
        first.join(timeout=10)
    assert results["first"].status_code == 201
    assert command(writer, "register-customer", ADA, key=key).json() == results["first"].json()
    assert counts() == (1, 1, 1)


def sent_twice_at_once(mediator, command, *, held_by: int) -> list:
    """Two threads send the command with its key (each its own command id), both held at the lock `held_by`."""
    twice = [RegisterCustomer(**{**command.__dict__, "command_id": uuid.uuid4()}) for _ in range(2)]
    return sent_at_once(mediator, twice, CONTEXT, held_by=held_by)


@pytest.mark.django_db(transaction=True)
def test_with_redis_down_a_concurrent_duplicate_waits_and_replays_instead_of_running_twice():
    # given: no fast tier at all, and the first command held inside its transaction
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, socket_timeout=0.2, retry=NO_RETRY)
    mediator = build_mediator(fast_path=RedisFastPath(dead))
    register = RegisterCustomer(idempotency_key=uuid.uuid4(), first_name="A", last_name="B", email="race@b.c")

    # when
    outcomes = sent_twice_at_once(mediator, register, held_by=advisory_lock_key("customer-email", "race@b.c"))

    # then
    assert sorted(o.status_code for o in outcomes) == [201, 201]
    assert sorted(o.replayed for o in outcomes) == [False, True]
    assert counts() == (1, 1, 1)


@pytest.mark.django_db
def test_expired_records_are_pruned_and_their_key_may_be_used_again(writer):
    key = str(uuid.uuid4())
    command(writer, "register-customer", ADA, key=key)
    IdempotencyRecord.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    assert prune_idempotency_records() == 1
    assert IdempotencyRecord.objects.count() == 0
    assert settings.IDEMPOTENCY_WINDOW_SECONDS == 24 * 3600


def test_the_fingerprint_ignores_ids_but_not_fields():
    a = RegisterCustomer(idempotency_key=uuid.uuid4(), first_name="A", last_name="B", email="e")
    b = RegisterCustomer(idempotency_key=uuid.uuid4(), first_name="A", last_name="B", email="e")
    c = RegisterCustomer(idempotency_key=uuid.uuid4(), first_name="A", last_name="B", email="f")

    assert fingerprint(a) == fingerprint(b) != fingerprint(c)


def a_customer_each_time(command: RegisterCustomer, call: HandlerCall):
    """A handler that succeeds on every run (a new customer, a new email), like PlaceOrder with its own ids."""
    with call.uow as uow:
        uow.lock("test", "one-at-a-time")
        customer = Customer.register(
            customer_id=uuid7(), first_name="A", last_name="B", email=f"{uuid.uuid4().hex}@example.com"
        )
        uow.customers.add(customer)
        uow.commit()
    return Ok({"customer_id": str(customer.customer_id)})


def mediator_running(handler, fast_path):
    registry = HandlerRegistry()
    registry.register(RegisterCustomer, handler)
    return build_mediator(registry=registry, fast_path=fast_path)


@pytest.mark.django_db(transaction=True)  # the command's transaction is the outermost one, as in production
def test_a_command_writes_its_record_once_with_the_response_and_takes_no_savepoint():
    # given
    mediator = build_mediator()
    register = RegisterCustomer(idempotency_key=uuid.uuid4(), first_name="A", last_name="B", email="once@b.c")

    # when
    with CaptureQueriesContext(connection) as queries:
        outcome = mediator.send(register, CONTEXT)

    # then: one INSERT of the record, already holding the response; no UPDATE, no savepoint
    sql = [q["sql"] for q in queries.captured_queries]
    assert outcome.status_code == 201
    assert sum("write_idempotency_record" in s for s in sql) == 1
    assert not [s for s in sql if "SAVEPOINT" in s.upper()]
    record = IdempotencyRecord.objects.get()
    assert (record.status_code, json.loads(record.response_body)) == (201, outcome.body)


@pytest.mark.django_db
def test_a_duplicate_whose_handler_succeeds_again_is_rolled_back_and_replays_the_first_response():
    # given: the first run completed, then Redis forgot it
    mediator = mediator_running(a_customer_each_time, RedisFastPath(get_redis_connection("default")))
    register = RegisterCustomer(idempotency_key=uuid.uuid4(), first_name="A", last_name="B", email="e@b.c")
    first = mediator.send(register, CONTEXT)
    get_redis_connection("default").flushdb()

    # when: the retry's handler writes a second customer, and its record meets the first one's
    again = mediator.send(RegisterCustomer(**{**register.__dict__, "command_id": uuid.uuid4()}), CONTEXT)
    other = mediator.send(RegisterCustomer(**{**register.__dict__, "email": "other@b.c"}), CONTEXT)

    # then: its whole transaction rolled back; it replays, and another payload is refused
    assert (again.status_code, again.replayed, again.body) == (201, True, first.body)
    assert (other.status_code, other.error.code if other.error else None) == (422, "IDEMPOTENCY_KEY_REUSED")
    assert counts() == (1, 1, 1)


@pytest.mark.django_db(transaction=True)
def test_with_redis_down_a_concurrent_duplicate_that_succeeds_again_still_takes_effect_once():
    # given: no fast tier, a handler that succeeds on every run, both runs held until the test lets go
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, socket_timeout=0.2, retry=NO_RETRY)
    mediator = mediator_running(a_customer_each_time, RedisFastPath(dead))
    register = RegisterCustomer(idempotency_key=uuid.uuid4(), first_name="A", last_name="B", email="e@b.c")

    # when
    outcomes = sent_twice_at_once(mediator, register, held_by=advisory_lock_key("test", "one-at-a-time"))

    # then
    assert sorted(o.replayed for o in outcomes) == [False, True]
    assert outcomes[0].body == outcomes[1].body
    assert counts() == (1, 1, 1)


@pytest.mark.django_db
def test_an_expired_record_not_yet_pruned_is_replaced_when_its_key_is_used_again(writer):
    # given
    key = str(uuid.uuid4())
    first = command(writer, "register-customer", ADA, key=key)
    IdempotencyRecord.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    get_redis_connection("default").flushdb()

    # when: the same key, another customer
    again = command(writer, "register-customer", {**ADA, "email": "grace@example.com"}, key=key)

    # then: it ran; the one record now holds its response
    assert again.status_code == 201 and again.json() != first.json()
    assert "Idempotent-Replayed" not in again
    record = IdempotencyRecord.objects.get()
    assert (json.loads(record.response_body), record.expires_at > timezone.now()) == (again.json(), True)
