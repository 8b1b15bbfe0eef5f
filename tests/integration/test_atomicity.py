"""A handler that fails after staging its aggregate leaves neither the aggregate nor its outbox row."""

import uuid

import pytest
from uuid_utils.compat import uuid7

import sqlkit
from commands_app.bootstrap import build_mediator
from commands_app.commands import RegisterCustomer
from commands_app.domain.customer import Customer
from commands_app.mediator import CommandContext, HandlerRegistry
from commands_app.middleware.idempotency_store import CacheFastPath
from commands_app.models import CustomerRecord, IdempotencyRecord
from commands_app.result import Error, Ok
from outbox_app.models import OutboxEvent
from tests.factories import CustomerRecordFactory

pytestmark = pytest.mark.django_db

CONTEXT = CommandContext(client_id="test", scopes=frozenset({"write"}), correlation_id="c-1")


def save_then(failure):
    def handler(command: RegisterCustomer, uow):
        customer = Customer.register(customer_id=uuid7(), first_name="A", last_name="B", email=command.email)
        uow.repository(Customer).add(customer)  # staged in the command's transaction
        return failure()

    return handler


def mediator_with(handler):
    from django.core.cache import caches

    registry = HandlerRegistry()
    registry.register(RegisterCustomer, handler)
    return build_mediator(registry=registry, fast_path=CacheFastPath(caches["default"]))


def register(email: str) -> RegisterCustomer:
    return RegisterCustomer(idempotency_key=uuid.uuid4(), first_name="A", last_name="B", email=email)


def test_an_exception_after_saving_rolls_back_aggregate_outbox_and_idempotency_record():
    def explode():
        raise RuntimeError("the handler crashed after saving")

    mediator = mediator_with(save_then(explode))

    with pytest.raises(RuntimeError):
        mediator.send(register("x@example.com"), CONTEXT)

    assert (CustomerRecord.objects.count(), OutboxEvent.objects.count(), IdempotencyRecord.objects.count()) == (0, 0, 0)


def test_an_error_result_after_staging_writes_keeps_none_of_them():
    mediator = mediator_with(save_then(lambda: Error("LATE_FAILURE", "decided against it after saving")))

    outcome = mediator.send(register("y@example.com"), CONTEXT)

    assert outcome.error is not None and outcome.error.code == "LATE_FAILURE"
    assert (CustomerRecord.objects.count(), OutboxEvent.objects.count(), IdempotencyRecord.objects.count()) == (0, 0, 0)


def test_an_error_result_in_a_senders_transaction_unstages_what_the_handler_staged():
    # given: a sender that owns the transaction and writes a row of its own after the command
    mediator = mediator_with(save_then(lambda: Error("LATE_FAILURE", "decided against it after saving")))
    own_row = {"customer_id": uuid7(), "first_name": "S", "last_name": "T", "email": "own@example.com", "version": 1}

    # when
    with sqlkit.Transaction.begin() as tx:
        outcome = mediator.send(register("y@example.com"), CONTEXT.within(tx))
        tx.flush(*sqlkit.insert(CustomerRecord, [own_row]))

    # then: the sender's row is there, nothing the handler staged before its error
    assert outcome.error is not None and outcome.error.code == "LATE_FAILURE"
    assert list(CustomerRecord.objects.values_list("email", flat=True)) == ["own@example.com"]
    assert (OutboxEvent.objects.count(), IdempotencyRecord.objects.count()) == (0, 0)


def test_an_error_result_after_saving_that_the_key_keeps_is_its_only_row():
    # given: an API client's context, whose keys keep business errors
    mediator = mediator_with(save_then(lambda: Error("LATE_FAILURE", "decided against it after saving")))
    context = CommandContext(
        client_id="api", scopes=frozenset({"write"}), correlation_id="c-2", keeps_business_errors=True
    )

    # when
    outcome = mediator.send(register("w@example.com"), context)

    # then: the saved aggregate and its event rolled back; the record keeps the answer
    assert outcome.status_code == 422
    assert (CustomerRecord.objects.count(), OutboxEvent.objects.count()) == (0, 0)
    assert IdempotencyRecord.objects.get().response_error["code"] == "LATE_FAILURE"


def test_an_aggregate_changed_and_not_saved_is_refused_and_nothing_is_written():
    # given: a customer, and a handler that registers another but forgets to save the one it changed
    existing = CustomerRecordFactory(email="before@example.com")

    def register_then_forget_to_save(command: RegisterCustomer, uow):
        customers = uow.repository(Customer)
        customers.add(Customer.register(customer_id=uuid7(), first_name="A", last_name="B", email=command.email))
        changed = customers.get(existing.customer_id)
        changed.change_email("changed@example.com")
        return Ok({})

    # when / then
    with pytest.raises(RuntimeError, match="not saved"):
        mediator_with(register_then_forget_to_save).send(register("z@example.com"), CONTEXT)
    assert list(CustomerRecord.objects.values_list("email", flat=True)) == ["before@example.com"]
    assert (OutboxEvent.objects.count(), IdempotencyRecord.objects.count()) == (0, 0)
