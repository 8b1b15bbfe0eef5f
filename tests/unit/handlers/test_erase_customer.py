"""EraseCustomer: the customer's key destroyed, its personal data forgotten in the write model; idempotent."""

import copy
import uuid

from uuid_utils.compat import uuid7

from commands_app.commands import EraseCustomer
from commands_app.domain.customer import Customer
from commands_app.handlers.erase_customer import erase_customer
from commands_app.ports import Lock
from commands_app.result import Error, Ok
from tests.fakes import FakeUnitOfWork, Read, assert_nothing_committed, decide
from tests.unit.handlers.given import a_customer


def erase(customer_id) -> EraseCustomer:
    return EraseCustomer(idempotency_key=uuid.uuid4(), customer_id=customer_id)


def test_the_key_is_destroyed_the_personal_data_forgotten_and_customer_erased_recorded():
    customer = a_customer("ada@example.com")
    uow = FakeUnitOfWork.holding(customer)

    result = decide(erase_customer, erase(customer.customer_id), uow)

    assert result == Ok({"customer_id": str(customer.customer_id), "version": 2, "erased_now": True})
    stored = uow.get(Customer, customer.customer_id)
    assert "Ada" not in (stored.first_name, stored.last_name)
    assert "ada@example.com" not in stored.email
    assert uow.erased == {customer.customer_id}
    assert uow.event_types() == ["CustomerErased"]


def test_erasing_an_erased_customer_changes_nothing_and_says_so():
    customer = a_customer("ada@example.com")
    uow = FakeUnitOfWork.holding(customer)
    decide(erase_customer, erase(customer.customer_id), uow)
    before = copy.deepcopy(uow.stored)
    uow.events.clear()

    result = decide(erase_customer, erase(customer.customer_id), uow)

    assert result == Ok({"customer_id": str(customer.customer_id), "version": 2, "erased_now": False})
    assert uow.stored == before
    assert uow.event_types() == []


def test_an_unknown_customer_is_customer_not_found_and_nothing_is_committed():
    uow = FakeUnitOfWork()

    result = decide(erase_customer, erase(uuid7()), uow)

    assert isinstance(result, Error)
    assert (result.code, result.details) == ("CUSTOMER_NOT_FOUND", {"field": "customer_id"})
    assert_nothing_committed(uow, {})
    assert uow.erased == set()


def test_the_customers_lock_comes_with_its_read():
    customer = a_customer("ada@example.com")
    uow = FakeUnitOfWork.holding(customer)

    decide(erase_customer, erase(customer.customer_id), uow)

    assert uow.journal == [Lock("customer", str(customer.customer_id)), Read("Customer", (customer.customer_id,))]
