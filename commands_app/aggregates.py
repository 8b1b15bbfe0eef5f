"""The write side's aggregates as the unit of work stores them: each with its table and the error codes it answers.

An aggregate brings its domain class (commands_app/domain/, with its events in commands_app/events.py), its
record (commands_app/models.py) and one entry here. `<TYPE>_NOT_FOUND` answers 404 for every aggregate; a code
listed nowhere answers 422.
"""

from commands_app.domain.customer import Customer
from commands_app.domain.order import Order
from commands_app.domain.product import Product
from commands_app.models import CustomerRecord, OrderRecord, ProductRecord
from commands_app.repository import AggregateRegistration, Aggregates

AGGREGATES = Aggregates(
    AggregateRegistration(Customer, CustomerRecord, error_status={"EMAIL_TAKEN": 422}),
    AggregateRegistration(Product, ProductRecord, error_status={"SKU_TAKEN": 422, "INSUFFICIENT_STOCK": 422}),
    AggregateRegistration(
        Order,
        OrderRecord,
        error_status={
            "ORDER_NOT_PENDING": 409,
            "ORDER_ALREADY_CONFIRMED": 409,
            "ORDER_ALREADY_CANCELLED": 409,
            "INVALID_REASON": 422,
            "INVENTORY_NOT_RESERVED": 422,
            "PAYMENT_NOT_AUTHORIZED": 422,
        },
    ),
)
