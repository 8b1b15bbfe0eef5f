"""factory_boy factories for write-model rows, for tests that need state without going through commands."""

from decimal import Decimal

import factory
from uuid_utils.compat import uuid7

from commands_app.models import CustomerRecord, ProductRecord


class CustomerRecordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CustomerRecord

    customer_id = factory.LazyFunction(uuid7)
    first_name = "Ada"
    last_name = "Lovelace"
    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    version = 1


class ProductRecordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProductRecord

    sku = factory.Sequence(lambda n: f"SKU-{n}")
    name = "Desk lamp"
    description = "A lamp for a desk."
    price = Decimal("19.90")
    stock = 10
    version = 1
