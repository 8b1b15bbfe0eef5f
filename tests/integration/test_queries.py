"""GET /api/...: the query endpoints over read models built by the projections."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from queries_app import cache
from queries_app.api.serializers import CustomerOutput
from queries_app.models import CustomerReadModel, ProductReadModel
from queries_app.projection_engine.apply import project
from tests.streams import CustomerStream, OrderStream, ProductStream, line

pytestmark = pytest.mark.django_db
MISSING = "0190aaaa-0000-7000-8000-00000000dead"


@pytest.fixture
def reader(make_api_client):
    return make_api_client("read")


@pytest.fixture(autouse=True)
def forget_cached_best_sellers():
    cache.invalidate_best_sellers()


def test_an_order_is_served_with_its_lines_customer_payment_and_timeline(reader):
    # given
    ada = CustomerStream()
    order = OrderStream(customer_id=ada.customer_id)
    project(
        [
            ada.registered("Ada", "Lovelace", "ada@example.org"),
            order.placed(line("TEA", 2, "19.90", "Teapot")),
            order.payment_declined("card_declined"),
            order.cancelled("payment_declined"),
        ]
    )

    # when
    response = reader.get(f"/api/orders/{order.order_id}")

    # then
    assert response.status_code == 200
    assert response["X-Consistency-Level"] == "STRONG"
    body = response.json()
    assert {k: body[k] for k in ("id", "status", "total", "cancellation_reason", "payment_status", "version")} == {
        "id": order.order_id,
        "status": "cancelled",
        "total": "39.80",
        "cancellation_reason": "payment_declined",
        "payment_status": "declined",
        "version": 3,
    }
    assert body["customer"] == {
        "id": ada.customer_id,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@example.org",
    }
    assert body["lines"] == [
        {"sku": "TEA", "name": "Teapot", "quantity": 2, "unit_price": "19.90", "line_total": "39.80"}
    ]
    assert [(e["event"], e["detail"]) for e in body["timeline"]] == [
        ("OrderPlaced", "1 line(s), 2 unit(s), total 39.80"),
        ("PaymentDeclined", "declined: card_declined"),
        ("OrderCancelled", "cancelled: payment_declined"),
    ]


@pytest.mark.parametrize(
    ("path", "code"),
    [
        (f"/api/orders/{MISSING}", "ORDER_NOT_FOUND"),
        (f"/api/customers/{MISSING}", "CUSTOMER_NOT_FOUND"),
        ("/api/products/NOPE", "PRODUCT_NOT_FOUND"),
    ],
)
def test_unknown_resources_are_404_problems(reader, path, code):
    response = reader.get(path)

    assert (response.status_code, response["Content-Type"], response.json()["code"]) == (
        404,
        "application/problem+json",
        code,
    )


def test_a_customer_seen_only_through_orders_is_not_served_until_registered(reader):
    # given
    ada = CustomerStream()
    order = OrderStream(customer_id=ada.customer_id)
    project([order.placed(line("TEA"))])

    # when
    response = reader.get(f"/api/customers/{ada.customer_id}")

    # then
    assert response.status_code == 404


def test_a_customers_orders_filter_by_status_newest_first_in_pages(reader):
    # given
    ada, grace = CustomerStream(), CustomerStream()
    first, second, third = (OrderStream(customer_id=ada.customer_id) for _ in range(3))
    other = OrderStream(customer_id=grace.customer_id)
    project([first.placed(line("A")), first.confirmed(), second.placed(line("B")), third.placed(line("C"))])
    project([third.confirmed(), other.placed(line("D")), other.confirmed()])

    # when
    confirmed = reader.get("/api/orders", {"customer_id": ada.customer_id, "status": "confirmed", "page_size": 1})
    everything = reader.get("/api/orders", {"customer_id": ada.customer_id})

    # then
    assert confirmed.status_code == 200
    page = confirmed.json()
    assert (page["count"], [o["id"] for o in page["results"]]) == (2, [third.order_id])
    assert "page=2" in page["next"]
    assert [o["id"] for o in everything.json()["results"]] == [third.order_id, second.order_id, first.order_id]
    assert confirmed["X-Consistency-Level"] == "EVENTUAL"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "customer_id"),
        ({"customer_id": "nope"}, "customer_id"),
        ({"customer_id": MISSING, "status": "lost"}, "status"),
    ],
)
def test_order_lists_need_a_customer_id_and_a_known_status(reader, params, field):
    response = reader.get("/api/orders", params)

    assert (response.status_code, response.json()["code"]) == (400, "VALIDATION_FAILED")
    assert [e["field"] for e in response.json()["errors"]] == [field]


def test_a_product_is_served_with_price_and_availability(reader):
    # given
    teapot = ProductStream()
    project([teapot.added("Teapot", "Porcelain", "19.90", stock=10), teapot.reserved(MISSING, 4, available=6)])

    # when
    response = reader.get(f"/api/products/{teapot.sku}")

    # then
    assert response.json() == {
        "sku": teapot.sku,
        "name": "Teapot",
        "description": "Porcelain",
        "price": "19.90",
        "available": 6,
        "version": 2,
    }
    assert response["X-Consistency-Level"] == "HIGHLY_EVENTUAL"


def test_product_search_is_full_text_and_ranks_names_first(reader):
    # given
    teapot, cosy, kettle = ProductStream(), ProductStream(), ProductStream()
    project(
        [
            teapot.added("Porcelain teapot", "Holds six cups"),
            cosy.added("Knitted cosy", "Keeps teapots warm"),
            kettle.added("Kettle", "Boils water"),
        ]
    )

    # when: stemming matches "teapots" with "teapot"
    found = reader.get("/api/products", {"search": "teapots"}).json()
    nothing = reader.get("/api/products", {"search": "submarine"}).json()

    # then
    assert [p["sku"] for p in found["results"]] == [teapot.sku, cosy.sku]
    assert nothing["count"] == 0


def test_the_catalog_is_paginated_and_page_parameters_outside_the_schema_are_refused(reader):
    # given
    project([ProductStream(aggregate_id=f"SKU-{n:03}").added() for n in range(5)])

    # when
    response = reader.get("/api/products", {"page_size": 2, "page": 2})
    beyond = reader.get("/api/products", {"page_size": 2, "page": 4})
    refused = {
        params: reader.get("/api/products", dict([params]))
        for params in [("page_size", 201), ("page_size", "2.0"), ("page", 0), ("page", "x"), ("page", " 1")]
    }

    # then
    assert [p["sku"] for p in response.json()["results"]] == ["SKU-002", "SKU-003"]
    assert (beyond.status_code, beyond["Content-Type"]) == (404, "application/problem+json")
    for (name, _), answer in refused.items():
        assert (answer.status_code, answer.json()["errors"][0]["field"]) == (400, name)


def test_best_sellers_rank_products_by_units_sold(reader):
    # given
    teapot, cup = ProductStream(), ProductStream()
    first = OrderStream(customer_id=CustomerStream().customer_id)
    second = OrderStream(customer_id=CustomerStream().customer_id)
    project([teapot.added("Teapot"), cup.added("Cup")])
    project([first.placed(line(teapot.sku, 1), line(cup.sku, 3)), first.confirmed()])
    project([second.placed(line(teapot.sku, 1)), second.confirmed()])

    # when
    response = reader.get("/api/products/best-sellers", {"limit": 5})

    # then
    assert response.json() == {
        "results": [
            {"sku": cup.sku, "name": "Cup", "units_sold": 3},
            {"sku": teapot.sku, "name": "Teapot", "units_sold": 2},
        ]
    }
    assert reader.get("/api/products/best-sellers", {"limit": 0}).status_code == 400


def test_a_cached_product_is_forgotten_when_the_projection_changes_it(reader, django_capture_on_commit_callbacks):
    # given: the product is cached, then its row changes behind the cache's back
    teapot = ProductStream()
    project([teapot.added("Teapot", price="19.90")])
    assert reader.get(f"/api/products/{teapot.sku}").json()["price"] == "19.90"
    ProductReadModel.objects.filter(sku=teapot.sku).update(name="Renamed by hand")
    assert reader.get(f"/api/products/{teapot.sku}").json()["name"] == "Teapot"

    # when
    with django_capture_on_commit_callbacks(execute=True):
        project([teapot.price_changed("24.50", "19.90")])

    # then
    assert reader.get(f"/api/products/{teapot.sku}").json()["name"] == "Renamed by hand"
    assert reader.get(f"/api/products/{teapot.sku}").json()["price"] == "24.50"


@pytest.mark.parametrize(
    "path",
    [
        f"/api/orders/{MISSING}",
        f"/api/orders?customer_id={MISSING}",
        "/api/products",
        "/api/products/SKU-1",
        "/api/products/best-sellers",
        f"/api/customers/{MISSING}",
    ],
)
def test_every_query_needs_the_read_scope(make_api_client, client, path):
    assert make_api_client("write").get(path).status_code == 403
    assert client.get(path).status_code == 401


def test_a_customer_is_served_as_its_serializer_renders_the_row(reader):
    # given
    ada = CustomerStream()
    project([ada.registered(email="ada@example.com")])
    CustomerReadModel.objects.filter(customer_id=ada.customer_id).update(
        orders_count=2, lifetime_value=Decimal("39.8"), last_order_at=datetime(2026, 3, 1, 12, 30, 5, 120, tzinfo=UTC)
    )
    row = CustomerReadModel.objects.get(customer_id=ada.customer_id)

    # when
    response = reader.get(f"/api/customers/{ada.customer_id}")

    # then
    assert response.status_code == 200
    assert response.json() == CustomerOutput(row).data
    assert response.json()["lifetime_value"] == "39.80"
    assert response.json()["last_order_at"] == "2026-03-01T12:30:05.000120Z"


def test_the_benchs_bare_query_endpoints_drop_authentication_and_nothing_else(client, settings):
    # given
    ada = CustomerStream()
    project([ada.registered()])
    url = f"/api/customers/{ada.customer_id}"
    assert client.get(url).status_code == 401

    # when: the URLs bench/bare_wsgi.py serves
    settings.ROOT_URLCONF = "bench.bare_urls"
    response = client.get(url)

    # then
    assert response.status_code == 200
    assert response.json()["id"] == ada.customer_id
    assert response["X-Consistency-Level"] == "EVENTUAL"
    assert client.get(url, HTTP_X_CONSISTENCY_TOKEN="forged").status_code == 400


def test_an_empty_status_filter_is_refused_not_read_as_no_filter(make_api_client):
    response = make_api_client("read").get(f"/api/orders?customer_id={uuid.uuid4()}&status=")
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["status"]
