"""RegisterCustomer: a new customer with a unique email."""

from typing import Any

from uuid_utils.compat import uuid7

from commands_app.commands import RegisterCustomer
from commands_app.domain.customer import Customer, normalize_email
from commands_app.mediator import HandlerCall
from commands_app.result import Error, Ok, Result


def register_customer(command: RegisterCustomer, call: HandlerCall) -> Result[dict[str, Any]]:
    email = normalize_email(command.email)
    with call.uow as uow:
        # Two registrations with one email serialize here, so the uniqueness check below cannot race.
        uow.lock("customer-email", email)
        if uow.customers.email_taken(email):
            return Error("EMAIL_TAKEN", "A customer with this email exists already.", {"field": "email"})
        customer = Customer.register(
            customer_id=uuid7(), first_name=command.first_name, last_name=command.last_name, email=email
        )
        uow.customers.add(customer)
        uow.commit()
    return Ok({"customer_id": str(customer.customer_id), "version": customer.version})
