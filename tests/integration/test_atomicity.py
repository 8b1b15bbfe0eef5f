"""A handler that fails after staging its aggregate leaves neither the aggregate nor its outbox row."""

import uuid

import pytest
from uuid_utils.compat import uuid7

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


def test_an_error_result_after_staging_writes_is_a_bug_that_raises_and_writes_nothing():
    # An Error means nothing happened (the idempotency claim is released for a retry), so a handler that staged
    # writes and then answered one would silently drop what it meant to do.
    mediator = mediator_with(save_then(lambda: Error("LATE_FAILURE", "decided against it after saving")))

    with pytest.raises(RuntimeError, match="after staging writes"):
        mediator.send(register("y@example.com"), CONTEXT)

    assert (CustomerRecord.objects.count(), OutboxEvent.objects.count(), IdempotencyRecord.objects.count()) == (0, 0, 0)


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
