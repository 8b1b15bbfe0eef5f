"""Repositories map aggregates to write-model rows and remember which aggregates they handed out."""

from uuid import UUID

from commands_app.domain.aggregate import Aggregate
from commands_app.domain.customer import Customer
from commands_app.models import CustomerRecord


class ConcurrencyError(Exception):
    """The row changed under us although its aggregate lock was held: a bug, never a business error."""


class CustomerRepository:
    def __init__(self) -> None:
        self.seen: list[Aggregate] = []

    def add(self, customer: Customer) -> None:
        CustomerRecord.objects.create(
            customer_id=customer.customer_id,
            first_name=customer.first_name,
            last_name=customer.last_name,
            email=customer.email,
            version=customer.version,
        )
        self.seen.append(customer)

    def get(self, customer_id: UUID) -> Customer | None:
        row = CustomerRecord.objects.filter(customer_id=customer_id).first()
        if row is None:
            return None
        customer = Customer(
            customer_id=row.customer_id,
            first_name=row.first_name,
            last_name=row.last_name,
            email=row.email,
            version=row.version,
        )
        self.seen.append(customer)
        return customer

    def save(self, customer: Customer) -> None:
        loaded_version = customer.version - len(customer.pending_events)
        updated = CustomerRecord.objects.filter(customer_id=customer.customer_id, version=loaded_version).update(
            first_name=customer.first_name,
            last_name=customer.last_name,
            email=customer.email,
            version=customer.version,
        )
        if updated != 1:
            raise ConcurrencyError(f"Customer {customer.customer_id} is not at version {loaded_version}.")

    def email_taken(self, email: str) -> bool:
        return CustomerRecord.objects.filter(email=email).exists()
