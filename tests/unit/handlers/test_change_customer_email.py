"""ChangeCustomerEmail: a new, still unique, email; optimistic concurrency on the customer's version."""

import copy
import uuid

from uuid_utils.compat import uuid7

from commands_app.commands import ChangeCustomerEmail
from commands_app.domain.customer import Customer
from commands_app.handlers.change_customer_email import change_customer_email
from commands_app.ports import Lock
from commands_app.result import Error, Ok
from tests.fakes import FakeUnitOfWork, Read, assert_nothing_committed, decide
from tests.unit.handlers.given import a_customer


def change(customer_id, email: str, expected_version: int | None = None) -> ChangeCustomerEmail:
    return ChangeCustomerEmail(
        idempotency_key=uuid.uuid4(), customer_id=customer_id, email=email, expected_version=expected_version
    )


def test_the_email_changes_and_the_version_moves_on():
    customer = a_customer("old@example.com")
    uow = FakeUnitOfWork.holding(customer)

    result = decide(change_customer_email, change(customer.customer_id, "New@Example.com", expected_version=1), uow)

    assert result == Ok({"customer_id": str(customer.customer_id), "version": 2})
    assert uow.get(Customer, customer.customer_id).email == "new@example.com"
    assert uow.event_types() == ["CustomerEmailChanged"]


def test_an_unknown_customer_is_customer_not_found():
    uow = FakeUnitOfWork()
    missing = uuid7()

    result = decide(change_customer_email, change(missing, "new@example.com"), uow)

    assert isinstance(result, Error)
    assert (result.code, result.details) == ("CUSTOMER_NOT_FOUND", {"field": "customer_id"})
    assert_nothing_committed(uow, {})


def test_a_stale_expected_version_is_version_conflict_and_nothing_is_committed():
    customer = a_customer("old@example.com", version=3)
    uow = FakeUnitOfWork.holding(customer)
    before = copy.deepcopy(uow.stored)

    result = decide(change_customer_email, change(customer.customer_id, "new@example.com", expected_version=2), uow)

    assert isinstance(result, Error)
    assert (result.code, result.details) == ("VERSION_CONFLICT", {"expected_version": 2, "current_version": 3})
    assert_nothing_committed(uow, before)


def test_an_email_another_customer_has_is_email_taken():
    customer, other = a_customer("old@example.com"), a_customer("taken@example.com")
    uow = FakeUnitOfWork.holding(customer, other)
    before = copy.deepcopy(uow.stored)

    result = decide(change_customer_email, change(customer.customer_id, "taken@example.com"), uow)

    assert isinstance(result, Error) and result.code == "EMAIL_TAKEN"
    assert_nothing_committed(uow, before)


def test_the_customers_lock_and_the_new_emails_come_first_with_the_customers_read():
    customer = a_customer("old@example.com")
    uow = FakeUnitOfWork.holding(customer)

    decide(change_customer_email, change(customer.customer_id, "new@example.com"), uow)

    assert uow.journal == [
        Lock("customer", str(customer.customer_id)),
        Lock("customer-email", "new@example.com"),
        Read("Customer", (customer.customer_id,)),
        Read("Customer", (("email", "new@example.com"),)),
    ]
