"""Every command takes only the JSON types its schema states: a value of another type is a 400 naming the field.

DRF coerces by default (a number becomes text, "12" and 12.0 become 12, an integer becomes a UUID); a generated
client trusts the schema, so each of those is refused here, and the row counts prove that nothing was written.
"""

import uuid

import pytest

from commands_app.models import CustomerRecord, IdempotencyRecord, OrderRecord, ProductRecord
from outbox_app.models import OutboxEvent
from tests.conftest import command
from tests.factories import CustomerRecordFactory, ProductRecordFactory

pytestmark = pytest.mark.django_db
CUSTOMER_ID = "01a21810-7325-7691-b3c9-f11ffa325cc4"
BODIES = {
    "register-customer": {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"},
    "change-customer-email": {"customer_id": CUSTOMER_ID, "email": "ada@lovelace.org", "expected_version": 1},
    "add-product": {"sku": "NEW-1", "name": "Lamp", "description": "Warm.", "price": "19.90", "stock": 25},
    "restock-product": {"sku": "LAMP-1", "quantity": 3, "expected_version": 1},
    "change-product-price": {"sku": "LAMP-1", "price": "17.50", "expected_version": 1},
    "place-order": {"customer_id": CUSTOMER_ID, "lines": [{"sku": "LAMP-1", "quantity": 1}], "payment_token": "tok_ok"},
    "cancel-order": {"order_id": CUSTOMER_ID, "reason": "Wrong colour."},
}
WRONG_TYPES = [
    ("register-customer", "first_name", 1000000000000000000000000000000, "first_name"),
    ("register-customer", "last_name", True, "last_name"),
    ("register-customer", "email", 5, "email"),
    ("change-customer-email", "customer_id", 12345, "customer_id"),
    ("change-customer-email", "customer_id", "{01a21810-7325-7691-b3c9-f11ffa325cc4}", "customer_id"),
    ("change-customer-email", "customer_id", "urn:uuid:01a21810-7325-7691-b3c9-f11ffa325cc4", "customer_id"),
    ("change-customer-email", "customer_id", "01a2181073257691b3c9f11ffa325cc4", "customer_id"),
    ("change-customer-email", "expected_version", "1", "expected_version"),
    ("change-customer-email", "expected_version", 1.0, "expected_version"),
    ("add-product", "sku", 123, "sku"),
    ("add-product", "name", 3.5, "name"),
    ("add-product", "description", 0, "description"),
    ("add-product", "price", 19.9, "price"),
    ("add-product", "price", 20, "price"),
    ("add-product", "price", "1e3", "price"),
    ("add-product", "price", "19.", "price"),
    ("add-product", "stock", "25", "stock"),
    ("add-product", "stock", 25.0, "stock"),
    ("add-product", "stock", True, "stock"),
    ("restock-product", "quantity", "3", "quantity"),
    ("change-product-price", "price", None, "price"),
    ("place-order", "customer_id", {"id": CUSTOMER_ID}, "customer_id"),
    ("place-order", "lines", "LAMP-1", "lines"),
    ("place-order", "lines", [{"sku": "LAMP-1", "quantity": "1"}], "lines[0].quantity"),
    ("place-order", "lines", [{"sku": 7, "quantity": 1}], "lines[0].sku"),
    ("place-order", "payment_token", 123, "payment_token"),
    ("cancel-order", "order_id", [CUSTOMER_ID], "order_id"),
    ("cancel-order", "reason", 42, "reason"),
]


def rows() -> tuple[int, ...]:
    return tuple(
        model.objects.count() for model in (CustomerRecord, ProductRecord, OrderRecord, OutboxEvent, IdempotencyRecord)
    )


@pytest.fixture
def everyone(make_api_client):
    return make_api_client("read", "write", "catalog")


@pytest.mark.parametrize(("name", "field", "value", "named"), WRONG_TYPES)
def test_a_value_of_another_json_type_is_a_400_naming_the_field_and_writes_nothing(everyone, name, field, value, named):
    # given: the aggregates the valid body would act on exist, so only the type can be at fault
    CustomerRecordFactory(customer_id=uuid.UUID(CUSTOMER_ID))
    ProductRecordFactory(sku="LAMP-1")
    before = rows()

    # when
    response = command(everyone, name, {**BODIES[name], field: value})

    # then
    assert response.status_code == 400, response.json()
    problem = response.json()
    assert (response["Content-Type"], problem["code"]) == ("application/problem+json", "VALIDATION_FAILED")
    assert named in [error["field"] for error in problem["errors"]]
    assert rows() == before


def test_the_valid_bodies_are_accepted(everyone):
    # given
    CustomerRecordFactory(customer_id=uuid.UUID(CUSTOMER_ID))
    ProductRecordFactory(sku="LAMP-1", version=1)

    # when
    statuses = {
        name: command(everyone, name, body).status_code for name, body in BODIES.items() if name != "cancel-order"
    }

    # then: the bodies the table above spoils are themselves valid
    assert statuses == {
        "register-customer": 201,
        "change-customer-email": 200,
        "add-product": 201,
        "restock-product": 200,
        "change-product-price": 409,  # the restock moved the product to version 2
        "place-order": 202,
    }
