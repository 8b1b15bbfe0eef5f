"""The key lookup the log's readers open sealed personal data with (outbox_app.sealing), registered in ready()."""

from collections.abc import Collection, Mapping

from commands_app.models import CustomerKey


def customer_keys(customer_ids: Collection[str]) -> Mapping[str, bytes]:
    """The key of each of these customers that has one (an erased customer has none)."""
    found = CustomerKey.objects.using("default").filter(customer_id__in=list(customer_ids), key__isnull=False)
    return {str(customer_id): bytes(key) for customer_id, key in found.values_list("customer_id", "key") if key}
