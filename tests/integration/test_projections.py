"""Projections fed envelopes directly: exactly once, in per-aggregate order, with the read models they build."""

from decimal import Decimal
from uuid import UUID

import pytest

from queries_app.models import (
    AggregatePosition,
    CustomerReadModel,
    InboxEntry,
    OrderCustomer,
    OrderReadModel,
    ProductReadModel,
    ProjectionCheckpoint,
)
from queries_app.projection_engine.apply import Outcome, apply_once, project
from queries_app.projection_engine.rows import upsert
from queries_app.projections import BY_NAME
from tests.streams import CustomerStream, OrderStream, ProductStream, line

pytestmark = pytest.mark.django_db


def position(projection: str, aggregate_type: str, aggregate_id: str) -> int:
    row = AggregatePosition.objects.filter(
        projection=projection, aggregate_type=aggregate_type, aggregate_id=aggregate_id
    ).first()
    return row.version if row else 0


def test_a_duplicate_delivery_is_a_no_op():
    # given
    ada = CustomerStream()
    registered = ada.registered("Ada", "Lovelace", "ada@example.org")
    project([registered])

    # when
    run = project([registered, registered])

    # then
    assert (run.applied, run.duplicates) == (0, 4)  # twice, for the customers and the orders projections
    customer = CustomerReadModel.objects.get(customer_id=ada.customer_id)
    assert (customer.first_name, customer.email, customer.version) == ("Ada", "ada@example.org", 1)
    assert InboxEntry.objects.filter(projection="customers", event_id=registered["event_id"]).count() == 1
    assert ProjectionCheckpoint.objects.get(projection="customers").events_applied == 1


def test_a_batch_delivered_out_of_order_is_applied_in_version_order():
    # given
    ada = CustomerStream()
    registered = ada.registered(email="ada@example.org")
    changed = ada.email_changed("countess@example.org", "ada@example.org")

    # when
    run = project([changed, registered])

    # then
    assert (run.applied, run.pending) == (4, [])
    assert CustomerReadModel.objects.get(customer_id=ada.customer_id).email == "countess@example.org"
    assert position("customers", "Customer", ada.customer_id) == 2


def test_a_version_ahead_of_a_gap_waits_until_the_gap_is_filled():
    # given
    ada = CustomerStream()
    registered = ada.registered(email="ada@example.org")
    changed = ada.email_changed("countess@example.org")

    # when
    waiting = project([changed])
    filled = project([registered])
    retried = project(waiting.pending_envelopes)

    # then
    assert {(p.projection, p.reason) for p in waiting.pending} == {("customers", "gap"), ("orders", "gap")}
    assert waiting.applied == 0 and filled.applied == 2 and retried.applied == 2
    assert CustomerReadModel.objects.get(customer_id=ada.customer_id).email == "countess@example.org"


def test_an_order_is_projected_through_its_lifecycle_with_its_customer_copied_in():
    # given
    ada = CustomerStream()
    teapot, cup = ProductStream(), ProductStream()
    order = OrderStream(customer_id=ada.customer_id)
    events = [
        ada.registered("Ada", "Lovelace", "ada@example.org"),
        order.placed(line(teapot.sku, 2, "19.90", "Teapot"), line(cup.sku, 1, "5.00", "Cup")),
        order.payment_authorized("auth_42"),
        order.confirmed(),
    ]

    # when
    run = project(events)

    # then
    assert run.pending == []
    view = OrderReadModel.objects.get(order_id=order.order_id)
    assert (view.status, view.payment_status, view.cancellation_reason) == ("confirmed", "authorized", "")
    assert (view.customer_first_name, view.customer_last_name, view.customer_email) == (
        "Ada",
        "Lovelace",
        "ada@example.org",
    )
    assert view.total == Decimal("44.80")
    assert view.lines == [
        {"sku": teapot.sku, "name": "Teapot", "quantity": 2, "unit_price": "19.90", "line_total": "39.80"},
        {"sku": cup.sku, "name": "Cup", "quantity": 1, "unit_price": "5.00", "line_total": "5.00"},
    ]
    assert [entry["event"] for entry in view.timeline] == ["OrderPlaced", "PaymentAuthorized", "OrderConfirmed"]
    assert view.timeline[1]["detail"] == "authorized 44.80 (auth_42)"
    assert view.version == 3
    customer = CustomerReadModel.objects.get(customer_id=ada.customer_id)
    assert (customer.orders_count, customer.lifetime_value) == (1, Decimal("44.80"))
    assert customer.last_order_at is not None


def test_a_cancelled_order_keeps_its_reason_and_payment_status():
    # given
    ada = CustomerStream()
    order = OrderStream(customer_id=ada.customer_id)
    events = [
        ada.registered(),
        order.placed(line("SKU-1")),
        order.payment_authorized(),
        order.payment_voided(),
        order.cancelled("payment_timeout"),
    ]

    # when
    project(events)

    # then
    view = OrderReadModel.objects.get(order_id=order.order_id)
    assert (view.status, view.cancellation_reason, view.payment_status) == ("cancelled", "payment_timeout", "voided")
    customer = CustomerReadModel.objects.get(customer_id=ada.customer_id)
    assert (customer.orders_count, customer.lifetime_value) == (1, Decimal("0"))


def test_an_order_applied_before_its_customer_gets_the_customer_when_it_arrives():
    # given: the order's events reach the projections before the customer's registration
    ada = CustomerStream()
    order = OrderStream(customer_id=ada.customer_id)
    project([order.placed(line("SKU-1", 1, "10.00")), order.confirmed()])
    placeholder = CustomerReadModel.objects.get(customer_id=ada.customer_id)

    # when
    project([ada.registered("Ada", "Lovelace", "ada@example.org")])

    # then
    assert (placeholder.version, placeholder.orders_count) == (0, 1)
    customer = CustomerReadModel.objects.get(customer_id=ada.customer_id)
    assert (customer.first_name, customer.version, customer.orders_count) == ("Ada", 1, 1)
    assert customer.lifetime_value == Decimal("10.00")
    assert OrderReadModel.objects.get(order_id=order.order_id).customer_email == "ada@example.org"


def test_an_email_change_reaches_every_order_of_the_customer():
    # given
    ada = CustomerStream()
    first, second = OrderStream(customer_id=ada.customer_id), OrderStream(customer_id=ada.customer_id)
    project([ada.registered(email="ada@example.org"), first.placed(line("SKU-1")), second.placed(line("SKU-2"))])

    # when
    project([ada.email_changed("countess@example.org", "ada@example.org")])

    # then
    emails = set(OrderReadModel.objects.filter(customer_id=ada.customer_id).values_list("customer_email", flat=True))
    assert emails == {"countess@example.org"}
    assert OrderCustomer.objects.get(customer_id=ada.customer_id).email == "countess@example.org"


def test_the_catalog_follows_price_and_availability():
    # given
    teapot = ProductStream()
    order_id = "0190aaaa-0000-7000-8000-000000000001"
    events = [
        teapot.added("Teapot", "A porcelain teapot", "19.90", stock=10),
        teapot.price_changed("24.50", "19.90"),
        teapot.reserved(order_id, 3, available=7),
        teapot.released(order_id, 1, available=8),
        teapot.restocked(5, stock=15, available=13),
    ]

    # when
    project(events)

    # then
    product = ProductReadModel.objects.get(sku=teapot.sku)
    assert (product.name, product.description, product.price) == ("Teapot", "A porcelain teapot", Decimal("24.50"))
    assert (product.available, product.version) == (13, 5)


def test_events_a_projection_does_not_use_still_advance_its_position():
    # given: the customers projection has no handler for payment events, yet follows Order
    ada = CustomerStream()
    order = OrderStream(customer_id=ada.customer_id)
    project([ada.registered(), order.placed(line("SKU-1", 1, "7.00"))])

    # when
    run = project([order.reservation_failed("SKU-1", 1, 0), order.cancelled("insufficient_stock")])

    # then
    assert run.pending == []
    assert position("customers", "Order", order.order_id) == 3
    assert position("best_sellers", "Order", order.order_id) == 3
    assert OrderReadModel.objects.get(order_id=order.order_id).timeline[1]["detail"] == "insufficient_stock: SKU-1"


def test_upserts_on_conflict_update_the_row_in_place():
    # given
    customer_id = UUID("0190aaaa-0000-7000-8000-0000000000aa")
    upsert(
        CustomerReadModel,
        [CustomerReadModel(customer_id=customer_id, email="old@example.org", version=1)],
        "read_customer",
    )

    # when
    written = upsert(
        CustomerReadModel,
        [CustomerReadModel(customer_id=customer_id, email="new@example.org", version=2)],
        "read_customer",
    )
    ignored = upsert(CustomerReadModel, [CustomerReadModel(customer_id=customer_id)], "read_customer", update=False)

    # then
    assert (written, ignored) == (1, 0)
    row = CustomerReadModel.objects.get(customer_id=customer_id)
    assert (row.email, row.version, CustomerReadModel.objects.count()) == ("new@example.org", 2, 1)


def test_apply_once_reports_each_outcome():
    # given
    ada = CustomerStream()
    registered, changed = ada.registered(), ada.email_changed("x@example.org")
    customers = BY_NAME["customers"]

    # when
    outcomes = [
        apply_once(customers, changed)[0],
        apply_once(customers, registered)[0],
        apply_once(customers, registered)[0],
    ]

    # then
    assert outcomes == [Outcome.WAITING, Outcome.APPLIED, Outcome.DUPLICATE]
