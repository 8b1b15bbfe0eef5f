"""The customer view: one row per customer, upserted from customer events."""

from typing import cast

from queries_app.envelopes import CustomerRegisteredPayload, Envelope
from queries_app.models import CustomerView
from queries_app.projections.base import Projection


class CustomerProjection(Projection):
    name = "customers"
    handles = frozenset({"CustomerRegistered"})

    def apply(self, envelope: Envelope) -> None:
        if envelope["event_type"] == "CustomerRegistered":
            payload = cast(CustomerRegisteredPayload, envelope["payload"])
            CustomerView.objects.bulk_create(
                [
                    CustomerView(
                        customer_id=payload["customer_id"],
                        first_name=payload["first_name"],
                        last_name=payload["last_name"],
                        email=payload["email"],
                        version=envelope["aggregate_version"],
                    )
                ],
                update_conflicts=True,
                unique_fields=["customer_id"],
                update_fields=["first_name", "last_name", "email", "version", "updated_at"],
            )
