"""The Customer aggregate."""

from dataclasses import dataclass
from uuid import UUID

from commands_app.domain.aggregate import Aggregate
from commands_app.events import CustomerEmailChanged, CustomerErased, CustomerRegistered

# What an erased customer's names read as in the write model (the log reads them as outbox_app.sealing.ERASED).
ERASED = "[erased]"


def normalize_email(email: str) -> str:
    return email.strip().lower()


@dataclass(kw_only=True)
class Customer(Aggregate):
    aggregate_type = "Customer"
    key_field = "customer_id"
    customer_id: UUID
    first_name: str
    last_name: str
    email: str

    @classmethod
    def register(cls, *, customer_id: UUID, first_name: str, last_name: str, email: str) -> "Customer":
        customer = cls(
            customer_id=customer_id,
            first_name=first_name.strip(),
            last_name=last_name.strip(),
            email=normalize_email(email),
        )
        customer.record(
            CustomerRegistered(
                customer_id=customer.customer_id,
                first_name=customer.first_name,
                last_name=customer.last_name,
                email=customer.email,
            )
        )
        return customer

    def change_email(self, email: str) -> None:
        previous, self.email = self.email, normalize_email(email)
        self.record(CustomerEmailChanged(customer_id=self.customer_id, email=self.email, previous_email=previous))

    def erase(self) -> None:
        """Forget the customer's personal data; the email becomes a unique placeholder that is no one's address."""
        self.first_name = self.last_name = ERASED
        self.email = f"erased:{self.customer_id}"
        self.record(CustomerErased(customer_id=self.customer_id))
