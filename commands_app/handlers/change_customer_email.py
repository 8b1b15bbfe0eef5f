"""ChangeCustomerEmail: a new, still unique, email for a customer."""

from typing import Any

from commands_app.commands import ChangeCustomerEmail
from commands_app.domain.customer import normalize_email
from commands_app.mediator import HandlerCall
from commands_app.result import Error, Ok, Result


def change_customer_email(command: ChangeCustomerEmail, call: HandlerCall) -> Result[dict[str, Any]]:
    email = normalize_email(command.email)
    with call.uow as uow:
        uow.lock("customer", str(command.customer_id))
        uow.lock("customer-email", email)
        customer = uow.customers.get(command.customer_id)
        if customer is None:
            return Error("CUSTOMER_NOT_FOUND", "No such customer.", {"field": "customer_id"})
        if error := customer.check_version(command.expected_version):
            return error
        if email != customer.email and uow.customers.email_taken(email):
            return Error("EMAIL_TAKEN", "A customer with this email exists already.", {"field": "email"})
        customer.change_email(email)
        uow.customers.save(customer)
        uow.commit()
    return Ok({"customer_id": str(customer.customer_id), "version": customer.version})
