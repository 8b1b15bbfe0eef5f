"""The read side's copy of the event catalog (docs/events.md): every event type of each aggregate type.

A projection follows aggregate types and is subscribed to every event type listed here for them, so its
version guard never waits on an event it would not be sent. tests/unit/test_read_catalog.py keeps this
in step with docs/events.md.
"""

EVENT_TYPES: dict[str, tuple[str, ...]] = {
    "Customer": ("CustomerRegistered", "CustomerEmailChanged"),
    "Product": ("ProductAdded", "ProductRestocked", "ProductPriceChanged", "InventoryReserved", "InventoryReleased"),
    "Order": (
        "OrderPlaced",
        "InventoryReservationFailed",
        "PaymentAuthorized",
        "PaymentDeclined",
        "PaymentRefunded",
        "OrderConfirmed",
        "OrderCancelled",
    ),
}


def event_types_of(aggregate_types: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(event_type for aggregate_type in aggregate_types for event_type in EVENT_TYPES[aggregate_type])
