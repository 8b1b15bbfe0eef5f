"""The unit of work's round trips: a lock goes with the read that asks for it, and the staged writes go with
the last statement of the transaction's owner (the idempotency record, and a sender's own statements when the
sender owns the transaction).

Fewer round trips must not loosen anything: the read after a lock still sees every transaction that held the
lock before (its own statement, its own snapshot), a row changed under its lock still fails the command, and
a lock taken alone is held at once.
"""

import threading
import uuid

import psycopg
import pytest
from django.core.cache import caches
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from uuid_utils.compat import uuid7

import sqlkit
from commands_app.bootstrap import build_mediator
from commands_app.commands import ChangeCustomerEmail, RegisterCustomer
from commands_app.domain.customer import Customer
from commands_app.mediator import CommandAppliedAlready, CommandContext, HandlerRegistry
from commands_app.middleware.idempotency_store import CacheFastPath
from commands_app.models import CustomerRecord, IdempotencyRecord
from commands_app.ports import Lock
from commands_app.repository import ConcurrencyError
from commands_app.result import Ok
from commands_app.unit_of_work import advisory_lock_key
from outbox_app.models import OutboxEvent
from tests.factories import CustomerRecordFactory
from tests.races import sent_at_once

CONTEXT = CommandContext(client_id="client-1", scopes=frozenset({"write"}), correlation_id="c")


def register(email: str) -> RegisterCustomer:
    return RegisterCustomer(idempotency_key=uuid.uuid4(), first_name="Ada", last_name="Lovelace", email=email)


def mediator_running(command_type, handler):
    registry = HandlerRegistry()
    registry.register(command_type, handler)
    return build_mediator(registry=registry)


@pytest.mark.django_db(transaction=True)
def test_a_command_takes_four_round_trips_the_lock_with_its_read_the_rows_with_their_events_and_record():
    # given
    mediator = build_mediator()
    mediator.send(register("warm@example.com"), CONTEXT)

    # when
    with CaptureQueriesContext(connection) as queries:
        outcome = mediator.send(register("ada@example.com"), CONTEXT)

    # then: BEGIN, lock + uniqueness read, customer + outbox rows + idempotency record, COMMIT
    assert outcome.status_code == 201
    sent = [query["sql"] for query in queries.captured_queries]
    assert len(sent) == 4, sent
    assert sent[0] == "BEGIN" and sent[-1] == "COMMIT"
    assert "pg_advisory_xact_lock" in sent[1] and 'FROM "write_customer"' in sent[1]
    rows, outbox_rows, record = (
        sent[2].index(table) for table in ('"write_customer"', '"outbox_app_outboxevent"', "write_idempotency_record")
    )
    assert rows < outbox_rows < record
    assert OutboxEvent.objects.filter(aggregate_id=outcome.body["customer_id"]).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_registrations_of_one_email_racing_one_wins_the_other_reads_its_row_after_the_lock():
    # given: two registrations of one email (two keys)
    both = [register("race@example.com"), register("race@example.com")]

    # when: both are sent at once, held at the email's lock until both are in
    lock = advisory_lock_key("customer-email", "race@example.com")
    outcomes = sent_at_once(build_mediator(), both, CONTEXT, held_by=lock)

    # then: the second read ran after the first commit (a snapshot taken before its lock would have missed the
    # row and met the unique index instead: an IntegrityError, not EMAIL_TAKEN)
    assert sorted((o.status_code, o.error.code if o.error else None) for o in outcomes) == [
        (201, None),
        (422, "EMAIL_TAKEN"),
    ]
    assert CustomerRecord.objects.filter(email="race@example.com").count() == 1
    assert OutboxEvent.objects.count() == 1


@pytest.mark.django_db
def test_a_row_changed_under_its_lock_fails_the_command_and_nothing_is_written():
    # given: a customer whose row another writer bumps behind the lock (a bug this check exists to catch)
    customer = CustomerRecordFactory(email="old@example.com", version=1)

    def change_behind_the_lock(command: ChangeCustomerEmail, uow):
        customers = uow.repository(Customer)
        loaded = customers.get(command.customer_id, after_locks=[Lock.on("customer", command.customer_id)])
        assert loaded is not None
        CustomerRecord.objects.filter(customer_id=command.customer_id).update(version=F("version") + 1)
        loaded.change_email(command.email)
        customers.save(loaded)
        return Ok({})

    mediator = mediator_running(ChangeCustomerEmail, change_behind_the_lock)
    command = ChangeCustomerEmail(
        idempotency_key=uuid.uuid4(), customer_id=customer.customer_id, email="new@example.com", expected_version=1
    )

    # when / then
    with pytest.raises(ConcurrencyError):
        mediator.send(command, CONTEXT)
    customer.refresh_from_db()
    assert (customer.email, customer.version) == ("old@example.com", 1)
    assert OutboxEvent.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_lock_taken_with_no_read_after_it_is_held_before_the_writes_land():
    # given: a handler that locks and writes without reading, and another session holding that lock
    def lock_then_write(command: RegisterCustomer, uow):
        uow.lock(Lock("customer-email", command.email))
        customer = Customer.register(customer_id=uuid7(), first_name="A", last_name="B", email=command.email)
        uow.repository(Customer).add(customer)
        return Ok({"customer_id": str(customer.customer_id), "version": customer.version})

    holder = psycopg.connect(_dsn())
    holder.execute("SELECT pg_advisory_xact_lock(%s)", [advisory_lock_key("customer-email", "lockonly@example.com")])
    mediator = mediator_running(RegisterCustomer, lock_then_write)
    outcomes = []

    def send():
        outcomes.append(mediator.send(register("lockonly@example.com"), CONTEXT))
        connection.close()

    sender = threading.Thread(target=send)
    sender.start()

    # when: the command runs while the lock is held elsewhere
    sender.join(timeout=0.5)

    # then: its writes wait for the lock, and land once it is released
    assert sender.is_alive() and not outcomes
    assert not CustomerRecord.objects.filter(email="lockonly@example.com").exists()
    holder.rollback()
    holder.close()
    sender.join(timeout=10)
    assert [o.status_code for o in outcomes] == [201]
    assert CustomerRecord.objects.filter(email="lockonly@example.com").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_sender_that_owns_the_transaction_sends_the_commands_writes_with_its_own_in_four_round_trips():
    # given: a sender (a saga step, say) that begins the transaction and will write a row of its own with the command
    mediator = build_mediator()
    mediator.send(register("warm-sender@example.com"), CONTEXT)
    own_row = {"customer_id": uuid7(), "first_name": "S", "last_name": "T", "email": "sender@example.com", "version": 1}

    # when
    with CaptureQueriesContext(connection) as queries, sqlkit.Transaction.begin() as tx:
        outcome = mediator.send(register("ada-sender@example.com"), CONTEXT.within(tx))
        tx.flush(*sqlkit.insert(CustomerRecord, [own_row]))

    # then: BEGIN, lock + read, the command's rows + outbox row + idempotency record + the sender's row, COMMIT
    assert outcome.status_code == 201
    sent = [query["sql"] for query in queries.captured_queries]
    assert len(sent) == 4, sent
    assert sent[2].index("write_idempotency_record") < sent[2].rindex('"write_customer"')
    assert set(CustomerRecord.objects.values_list("email", flat=True)) >= {
        "ada-sender@example.com",
        "sender@example.com",
    }
    assert IdempotencyRecord.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_sender_whose_key_was_used_already_gets_command_applied_already_and_keeps_nothing():
    # given: a command whose handler succeeds on every run, sent once; the fast tier then forgets it (a Redis
    # flush), so the durable record is what meets the second run
    fast_path = CacheFastPath(caches["default"])

    def a_customer_each_time(command: RegisterCustomer, uow):
        uow.repository(Customer).add(
            Customer.register(customer_id=uuid7(), first_name="A", last_name="B", email=f"{uuid7()}@example.com")
        )
        return Ok({})

    registry = HandlerRegistry()
    registry.register(RegisterCustomer, a_customer_each_time)
    mediator = build_mediator(registry=registry, fast_path=fast_path)
    command = register("twice@example.com")
    mediator.send(command, CONTEXT)
    caches["default"].clear()
    own_row = {"customer_id": uuid7(), "first_name": "S", "last_name": "T", "email": "lost@example.com", "version": 1}

    # when: a sender that owns the transaction sends it again, with a row of its own
    with pytest.raises(CommandAppliedAlready), sqlkit.Transaction.begin() as tx:
        mediator.send(command, CONTEXT.within(tx))
        tx.flush(*sqlkit.insert(CustomerRecord, [own_row]))

    # then: nothing of the sender's transaction is kept (neither the second customer nor the sender's row)
    assert CustomerRecord.objects.count() == 1
    assert OutboxEvent.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_sender_whose_transaction_rolled_back_runs_the_command_again_at_its_next_try():
    # given: a sender's transaction that ran the command and then rolled back (its own statement failed, say)
    mediator = build_mediator(fast_path=CacheFastPath(caches["default"]))
    command = register("rolled-back@example.com")
    with sqlkit.Transaction.begin() as tx:
        assert mediator.send(command, CONTEXT.within(tx)).status_code == 201
        tx.roll_back()

    # when: it tries again with the same key
    with sqlkit.Transaction.begin() as tx:
        outcome = mediator.send(command, CONTEXT.within(tx))

    # then: the command runs (no claim of the first try answers 409 IDEMPOTENCY_IN_PROGRESS), once
    assert (outcome.status_code, outcome.replayed) == (201, False)
    assert list(CustomerRecord.objects.values_list("email", flat=True)) == ["rolled-back@example.com"]
    assert IdempotencyRecord.objects.count() == 1


def _dsn() -> str:
    settings = connection.settings_dict
    return f"postgresql://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}"
