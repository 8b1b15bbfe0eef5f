"""EraseCustomer: destroy the key that seals a customer's personal data in the log, and forget it in the write model.

Idempotent: erasing an erased customer changes nothing and answers as the first time did.
"""

from typing import Any

from commands_app.commands import EraseCustomer
from commands_app.domain.customer import Customer
from commands_app.ports import SYSTEM, CommandRegistration, Lock, UnitOfWork
from commands_app.result import Ok, Result


def erase_customer(command: EraseCustomer, uow: UnitOfWork) -> Result[dict[str, Any]]:
    customers = uow.repository(Customer)
    customer = customers.get(command.customer_id, after_locks=[Lock.on("customer", command.customer_id)])
    if customer is None:
        return Customer.not_found(command.customer_id, field="customer_id")
    if uow.customer_keys.is_erased(customer.customer_id):
        return Ok({"customer_id": str(customer.customer_id), "version": customer.version, "erased_now": False})
    customer.erase()
    customers.save(customer)
    uow.customer_keys.destroy(customer.customer_id)
    return Ok({"customer_id": str(customer.customer_id), "version": customer.version, "erased_now": True})


REGISTRATION = CommandRegistration(EraseCustomer, erase_customer, scopes=SYSTEM)
