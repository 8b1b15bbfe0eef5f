"""ChangeCustomerEmail: a new, still unique, email for a customer."""

from typing import Any

from commands_app.commands import ChangeCustomerEmail
from commands_app.domain.customer import Customer, normalize_email
from commands_app.ports import WRITE, CommandRegistration, Lock, UnitOfWork
from commands_app.result import Error, Ok, Result


def change_customer_email(command: ChangeCustomerEmail, uow: UnitOfWork) -> Result[dict[str, Any]]:
    email = normalize_email(command.email)
    customers = uow.repository(Customer)
    # The customer's lock, and the new email's: a registration of the same email waits for this change.
    locks = [Lock.on("customer", command.customer_id), Lock.on("customer-email", email)]
    customer = customers.get(command.customer_id, after_locks=locks)
    if customer is None:
        return Customer.not_found(command.customer_id, field="customer_id")
    if error := customer.check_version(command.expected_version):
        return error
    if email != customer.email and customers.exists_where(email=email):
        return Error("EMAIL_TAKEN", "A customer with this email exists already.", {"field": "email"})
    customer.change_email(email)
    customers.save(customer)
    return Ok({"customer_id": str(customer.customer_id), "version": customer.version})


REGISTRATION = CommandRegistration(ChangeCustomerEmail, change_customer_email, scopes=WRITE)
