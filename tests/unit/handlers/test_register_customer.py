"""RegisterCustomer: a new customer with a unique (normalized) email, under the email's lock."""

import copy
import uuid

from commands_app.commands import RegisterCustomer
from commands_app.domain.customer import Customer
from commands_app.handlers.register_customer import register_customer
from commands_app.ports import Lock
from commands_app.result import Error, Ok
from tests.fakes import FakeUnitOfWork, Read, assert_nothing_committed, decide
from tests.unit.handlers.given import a_customer


def register(email: str) -> RegisterCustomer:
    return RegisterCustomer(idempotency_key=uuid.uuid4(), first_name=" Ada ", last_name="Lovelace", email=email)


def test_a_new_email_registers_a_customer_at_version_one():
    # given
    uow = FakeUnitOfWork()

    # when
    result = decide(register_customer, register(" Ada@Example.COM "), uow)

    # then
    assert isinstance(result, Ok)
    customer = uow.get(Customer, uuid.UUID(result.value["customer_id"]))
    assert (customer.first_name, customer.email, customer.version) == ("Ada", "ada@example.com", 1)
    assert uow.event_types() == ["CustomerRegistered"]


def test_a_taken_email_in_any_case_is_email_taken_and_nothing_is_committed():
    # given
    uow = FakeUnitOfWork.holding(a_customer("ada@example.com"))
    before = copy.deepcopy(uow.stored)

    # when
    result = decide(register_customer, register("ADA@example.com"), uow)

    # then
    assert isinstance(result, Error)
    assert (result.code, result.details) == ("EMAIL_TAKEN", {"field": "email"})
    assert_nothing_committed(uow, before)


def test_the_emails_lock_is_taken_with_the_uniqueness_read():
    uow = FakeUnitOfWork()

    decide(register_customer, register("Ada@example.com"), uow)

    assert uow.journal == [
        Lock("customer-email", "ada@example.com"),
        Read("Customer", (("email", "ada@example.com"),)),
    ]
