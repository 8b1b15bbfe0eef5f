"""RegisterCustomer: a new customer with a unique email."""

from typing import Any

from uuid_utils.compat import uuid7

from commands_app.commands import RegisterCustomer
from commands_app.domain.customer import Customer, normalize_email
from commands_app.ports import WRITE, CommandRegistration, Lock, UnitOfWork
from commands_app.result import Error, Ok, Result


def register_customer(command: RegisterCustomer, uow: UnitOfWork) -> Result[dict[str, Any]]:
    email = normalize_email(command.email)
    customers = uow.repository(Customer)
    # Two registrations with one email serialize on its lock, so the uniqueness check cannot race.
    if customers.exists_where(email=email, after_locks=[Lock.on("customer-email", email)]):
        return Error("EMAIL_TAKEN", "A customer with this email exists already.", {"field": "email"})
    customer = Customer.register(
        customer_id=uuid7(), first_name=command.first_name, last_name=command.last_name, email=email
    )
    customers.add(customer)
    return Ok({"customer_id": str(customer.customer_id), "version": customer.version})


REGISTRATION = CommandRegistration(RegisterCustomer, register_customer, scopes=WRITE, success_status=201)
