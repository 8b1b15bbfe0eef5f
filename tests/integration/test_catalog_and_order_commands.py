"""The command endpoints of the catalog and orders over HTTP, and bad input that writes nothing."""

import uuid

import pytest

from commands_app.models import CustomerRecord, IdempotencyRecord, OrderRecord, ProductRecord
from outbox_app.models import OutboxEvent
from tests.conftest import command
from tests.factories import CustomerRecordFactory, ProductRecordFactory

pytestmark = pytest.mark.django_db

LAMP = {"sku": "LAMP-1", "name": "Desk lamp", "description": "Warm light.", "price": "19.90", "stock": 5}


def counts() -> dict[str, int]:
    return {
        "products": ProductRecord.objects.count(),
        "orders": OrderRecord.objects.count(),
        "customers": CustomerRecord.objects.count(),
        "outbox": OutboxEvent.objects.count(),
        "idempotency": IdempotencyRecord.objects.count(),
    }


@pytest.fixture
def cataloguer(make_api_client):
    return make_api_client("read", "write", "catalog")


def test_add_restock_and_reprice_a_product(cataloguer):
    # when
    added = command(cataloguer, "add-product", LAMP)
    restocked = command(cataloguer, "restock-product", {"sku": "LAMP-1", "quantity": 3, "expected_version": 1})
    repriced = command(cataloguer, "change-product-price", {"sku": "LAMP-1", "price": "17.50"})

    # then
    assert (added.status_code, added.json()) == (201, {"sku": "LAMP-1", "version": 1})
    assert (restocked.status_code, restocked.json()) == (200, {"sku": "LAMP-1", "version": 2})
    assert (repriced.status_code, repriced.json()["version"]) == (200, 3)
    product = ProductRecord.objects.get()
    assert (product.stock, str(product.price), product.version) == (8, "17.50", 3)
    events = list(OutboxEvent.objects.order_by("aggregate_version").values_list("event_type", "payload"))
    assert [e for e, _ in events] == ["ProductAdded", "ProductRestocked", "ProductPriceChanged"]
    assert events[1][1] == {"sku": "LAMP-1", "quantity": 3, "stock": 8, "available": 8}
    assert events[2][1] == {"sku": "LAMP-1", "price": "17.50", "previous_price": "19.90"}


def test_catalog_commands_need_the_catalog_scope(writer):
    response = command(writer, "add-product", LAMP)

    assert (response.status_code, response.json()["code"]) == (403, "FORBIDDEN")
    assert counts()["products"] == 0


def test_a_stale_expected_version_is_a_409_version_conflict_and_writes_nothing(cataloguer):
    command(cataloguer, "add-product", LAMP)
    before = counts()

    response = command(cataloguer, "restock-product", {"sku": "LAMP-1", "quantity": 3, "expected_version": 7})

    assert (response.status_code, response.json()["code"]) == (409, "VERSION_CONFLICT")
    assert counts() == {**before, "idempotency": before["idempotency"] + 1}  # the key keeps its answer, no more
    assert ProductRecord.objects.get().stock == 5


def test_a_duplicate_sku_is_refused(cataloguer):
    command(cataloguer, "add-product", LAMP)

    response = command(cataloguer, "add-product", {**LAMP, "name": "Other"})

    assert (response.status_code, response.json()["code"]) == (422, "SKU_TAKEN")


def test_change_customer_email(writer):
    customer = CustomerRecordFactory(email="old@example.com")
    CustomerRecordFactory(email="taken@example.com")

    changed = command(writer, "change-customer-email", {"customer_id": str(customer.customer_id), "email": "New@x.org"})
    taken = command(
        writer, "change-customer-email", {"customer_id": str(customer.customer_id), "email": "taken@example.com"}
    )
    unknown = command(writer, "change-customer-email", {"customer_id": str(uuid.uuid4()), "email": "a@b.org"})

    assert (changed.status_code, changed.json()["version"]) == (200, 2)
    assert (taken.status_code, taken.json()["code"]) == (422, "EMAIL_TAKEN")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "CUSTOMER_NOT_FOUND")
    event = OutboxEvent.objects.get(event_type="CustomerEmailChanged")
    # sealed in the log (docs/security.md, "Erasure"), opened by its readers
    assert "new@x.org" not in str(event.payload)
    assert event.to_envelope()["payload"]["previous_email"] == "old@example.com"
    assert event.to_envelope()["payload"]["email"] == "new@x.org"


def test_place_an_order_at_todays_prices(writer):
    # given
    customer = CustomerRecordFactory()
    ProductRecordFactory(sku="A", name="Alpha", price="2.50")
    ProductRecordFactory(sku="B", name="Beta", price="10.00")

    # when
    response = command(
        writer,
        "place-order",
        {
            "customer_id": str(customer.customer_id),
            "lines": [{"sku": "A", "quantity": 4}, {"sku": "B", "quantity": 1}],
            "payment_token": "tok_ok",
        },
    )

    # then
    assert response.status_code == 202
    order_id = response.json()["order_id"]
    placed = OutboxEvent.objects.get(event_type="OrderPlaced")
    assert placed.aggregate_id == order_id
    assert placed.payload["total"] == "20.00"
    assert placed.payload["lines"][0] == {
        "sku": "A",
        "name": "Alpha",
        "quantity": 4,
        "unit_price": "2.50",
        "line_total": "10.00",
    }
    assert OrderRecord.objects.get().status == "pending"


def test_retrying_a_placed_order_with_its_key_replays_the_same_order(writer):
    # given
    customer = CustomerRecordFactory()
    ProductRecordFactory(sku="A")
    body = {"customer_id": str(customer.customer_id), "lines": [{"sku": "A", "quantity": 1}], "payment_token": "t"}
    key = str(uuid.uuid4())
    first = command(writer, "place-order", body, key=key)

    # when
    again = command(writer, "place-order", body, key=key)

    # then: the same order, not a new one and not IDEMPOTENCY_KEY_REUSED (the order id is the server's own)
    assert (again.status_code, again.json()) == (202, first.json())
    assert OrderRecord.objects.count() == 1


def test_lines_naming_one_sku_twice_are_one_line(writer):
    customer = CustomerRecordFactory()
    ProductRecordFactory(sku="A", price="1.00")
    body = {
        "customer_id": str(customer.customer_id),
        "lines": [{"sku": "A", "quantity": 1}, {"sku": "A", "quantity": 2}],
        "payment_token": "tok",
    }

    response = command(writer, "place-order", body)

    assert response.status_code == 202
    placed = OutboxEvent.objects.get(event_type="OrderPlaced")
    assert [(line["sku"], line["quantity"]) for line in placed.payload["lines"]] == [("A", 3)]


def test_cancel_an_order_until_it_is_confirmed(writer):
    customer = CustomerRecordFactory()
    ProductRecordFactory(sku="A")
    body = {"customer_id": str(customer.customer_id), "lines": [{"sku": "A", "quantity": 1}], "payment_token": "tok"}
    order_id = command(writer, "place-order", body).json()["order_id"]

    cancelled = command(writer, "cancel-order", {"order_id": order_id, "reason": "changed my mind"})
    again = command(writer, "cancel-order", {"order_id": order_id, "reason": "twice"})

    assert cancelled.status_code == 202
    assert (again.status_code, again.json()["code"]) == (409, "ORDER_ALREADY_CANCELLED")
    event = OutboxEvent.objects.get(event_type="OrderCancelled")
    opened = event.to_envelope()["payload"]
    assert (opened["reason"], opened["note"]) == ("customer_request", "changed my mind")
    assert "changed my mind" not in str(event.payload)


BAD_ORDERS = [
    ({"lines": [{"sku": "A", "quantity": 0}]}, "lines[0].quantity"),
    ({"lines": [{"sku": "A", "quantity": -3}]}, "lines[0].quantity"),
    ({"lines": [{"sku": "A", "quantity": 2**64 + 1}]}, "lines[0].quantity"),
    ({"lines": [{"sku": "A", "quantity": "1.5"}]}, "lines[0].quantity"),
    ({"lines": []}, "lines"),
    ({"lines": [{"sku": "A\x00", "quantity": 1}]}, "lines[0].sku"),
    ({"customer_id": "not-a-uuid"}, "customer_id"),
    ({"payment_token": "t" * 101}, "payment_token"),
    ({"surprise": 1}, "surprise"),
]


@pytest.mark.parametrize(("change", "field"), BAD_ORDERS)
def test_bad_orders_answer_400_naming_the_field_and_write_nothing(writer, change, field):
    customer = CustomerRecordFactory()
    ProductRecordFactory(sku="A")
    body = {"customer_id": str(customer.customer_id), "lines": [{"sku": "A", "quantity": 1}], "payment_token": "tok"}
    before = counts()

    response = command(writer, "place-order", {**body, **change})

    assert response.status_code == 400, response.json()
    assert response["Content-Type"] == "application/problem+json"
    assert field in [e["field"] for e in response.json()["errors"]]
    assert counts() == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"price": "1.999"}, "price"),
        ({"price": "12345678901.00"}, "price"),
        ({"price": "-1.00"}, "price"),
        ({"stock": -1}, "stock"),
        ({"stock": 2**63}, "stock"),
        ({"sku": "bad sku!"}, "sku"),
        ({"name": "x" * 201}, "name"),
        ({"name": "nul\x00name"}, "name"),
    ],
)
def test_bad_products_answer_400_and_write_nothing(cataloguer, change, field):
    response = command(cataloguer, "add-product", {**LAMP, **change})

    assert response.status_code == 400, response.json()
    assert field in [e["field"] for e in response.json()["errors"]]
    assert counts()["products"] == counts()["outbox"] == counts()["idempotency"] == 0


def test_numbers_beyond_floats_and_64_bits_in_raw_json_are_refused(cataloguer):
    body = '{"sku": "X", "name": "n", "description": "", "price": 1e999, "stock": 99999999999999999999999}'

    response = cataloguer.post(
        "/api/commands/add-product", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4())
    )

    assert response.status_code == 400
    assert {e["field"] for e in response.json()["errors"]} == {"price", "stock"}
    assert counts()["products"] == 0


def test_unknown_customer_or_sku_are_named_and_write_nothing(writer):
    customer = CustomerRecordFactory()
    ProductRecordFactory(sku="A")
    before = counts()

    no_customer = command(
        writer,
        "place-order",
        {"customer_id": str(uuid.uuid4()), "lines": [{"sku": "A", "quantity": 1}], "payment_token": "t"},
    )
    no_sku = command(
        writer,
        "place-order",
        {"customer_id": str(customer.customer_id), "lines": [{"sku": "NOPE", "quantity": 1}], "payment_token": "t"},
    )

    assert (no_customer.status_code, no_customer.json()["code"]) == (404, "CUSTOMER_NOT_FOUND")
    assert no_customer.json()["errors"][0]["field"] == "customer_id"
    assert (no_sku.status_code, no_sku.json()["code"]) == (404, "PRODUCT_NOT_FOUND")
    assert no_sku.json()["errors"][0]["field"] == "lines[0].sku"
    assert counts() == {**before, "idempotency": before["idempotency"] + 2}  # each key keeps its answer, no more


def test_bounds_on_quantities_and_totals_are_422_business_rules_that_write_nothing(writer):
    # given: a product priced so that 36,154 units overflowed the order total's column (a 500 before the bound)
    customer = CustomerRecordFactory()
    ProductRecordFactory(sku="GOLD", price="99999999.99", stock=1_000_000)
    body = {"customer_id": str(customer.customer_id), "payment_token": "tok_ok"}
    before = counts()

    # when
    too_dear = command(writer, "place-order", {**body, "lines": [{"sku": "GOLD", "quantity": 36_154}]})
    too_many = command(writer, "place-order", {**body, "lines": [{"sku": "GOLD", "quantity": 600_000}] * 2})

    # then
    assert (too_dear.status_code, too_dear.json()["code"]) == (422, "ORDER_TOTAL_TOO_LARGE")
    assert too_dear.json()["errors"][0]["field"] == "lines"
    assert (too_many.status_code, too_many.json()["code"]) == (422, "QUANTITY_TOO_LARGE")
    assert counts() == {**before, "idempotency": before["idempotency"] + 2}  # each key keeps its answer, no more


def test_an_order_at_the_bound_is_placed(writer):
    # given
    customer = CustomerRecordFactory()
    ProductRecordFactory(sku="GOLD", price="99999999.99", stock=1_000)

    # when: 100 units at 99,999,999.99 is 9,999,999,999.00, under the bound of 9,999,999,999.99
    response = command(
        writer,
        "place-order",
        {"customer_id": str(customer.customer_id), "lines": [{"sku": "GOLD", "quantity": 100}], "payment_token": "t"},
    )

    # then
    assert response.status_code == 202
    assert str(OrderRecord.objects.get().total) == "9999999999.00"


def test_a_restock_past_the_stock_bound_is_a_422_and_writes_nothing(cataloguer):
    # given
    ProductRecordFactory(sku="BULK", stock=999_999_990, version=1)

    # when
    refused = command(cataloguer, "restock-product", {"sku": "BULK", "quantity": 11})
    accepted = command(cataloguer, "restock-product", {"sku": "BULK", "quantity": 10})

    # then
    assert (refused.status_code, refused.json()["code"]) == (422, "STOCK_LIMIT_EXCEEDED")
    assert accepted.status_code == 200
    assert ProductRecord.objects.get(sku="BULK").stock == 1_000_000_000
    assert OutboxEvent.objects.filter(event_type="ProductRestocked").count() == 1
