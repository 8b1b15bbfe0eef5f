"""A handler that fails after saving its aggregate leaves neither the aggregate nor its outbox row."""

import uuid

import pytest
from uuid_utils.compat import uuid7

from commands_app.bootstrap import build_mediator
from commands_app.commands import RegisterCustomer
from commands_app.domain.customer import Customer
from commands_app.mediator import CommandContext, HandlerCall, HandlerRegistry
from commands_app.middleware.idempotency_store import CacheFastPath
from commands_app.models import CustomerRecord, IdempotencyRecord
from commands_app.result import Error, Ok
from outbox_app.models import OutboxEvent

pytestmark = pytest.mark.django_db

CONTEXT = CommandContext(client_id="test", scopes=frozenset({"write"}), correlation_id="c-1")


def save_then(failure):
    def handler(command: RegisterCustomer, call: HandlerCall):
        with call.uow as uow:
            customer = Customer.register(customer_id=uuid7(), first_name="A", last_name="B", email=command.email)
            uow.customers.add(customer)
            uow.commit()  # aggregate row and outbox row are written now, inside the transaction
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


def test_an_error_result_after_saving_rolls_back_everything():
    mediator = mediator_with(save_then(lambda: Error("LATE_FAILURE", "decided against it after saving")))

    outcome = mediator.send(register("y@example.com"), CONTEXT)

    assert outcome.error is not None and outcome.error.code == "LATE_FAILURE"
    assert (CustomerRecord.objects.count(), OutboxEvent.objects.count(), IdempotencyRecord.objects.count()) == (0, 0, 0)


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


def test_a_unit_of_work_left_without_commit_after_saving_raises_and_writes_nothing():
    def save_and_leave(command: RegisterCustomer, call: HandlerCall):
        with call.uow as uow:
            uow.customers.add(Customer.register(customer_id=uuid7(), first_name="A", last_name="B", email="z@e.com"))
        return Ok({})

    mediator = mediator_with(save_and_leave)

    with pytest.raises(RuntimeError, match="without commit"):
        mediator.send(register("z@example.com"), CONTEXT)

    assert (CustomerRecord.objects.count(), OutboxEvent.objects.count(), IdempotencyRecord.objects.count()) == (0, 0, 0)
