"""Concurrency on one aggregate: separate processes and threads racing through the real pipeline on PostgreSQL."""

import multiprocessing
import threading
import uuid
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection

from commands_app.bootstrap import build_mediator
from commands_app.commands import OrderLineRequest, PlaceOrder, ReserveInventory, RestockProduct
from commands_app.mediator import CommandContext
from commands_app.models import CustomerRecord, OrderRecord, ProductRecord
from outbox_app.models import OutboxEvent
from tests.factories import CustomerRecordFactory, ProductRecordFactory
from tests.processes import restock_racing

pytestmark = pytest.mark.django_db(transaction=True)

SYSTEM = CommandContext(client_id="system", scopes=frozenset({"system", "write", "catalog"}), correlation_id="race")


def test_two_processes_racing_on_one_aggregate_with_the_same_expected_version():
    # given
    ProductRecordFactory(sku="RACE", stock=1, version=1)
    db = settings.DATABASES["default"]
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    spawn = multiprocessing.get_context("spawn")
    with spawn.Manager() as manager:
        barrier, results = manager.Barrier(2), manager.dict()
        processes = [spawn.Process(target=restock_racing, args=(url, barrier, results, i)) for i in range(2)]

        # when
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=60)
        outcomes = sorted(results.values())

    # then: one wins, the other is told the aggregate moved, and nothing of it is written
    assert outcomes == [(200, None), (409, "VERSION_CONFLICT")]
    product = ProductRecord.objects.get(sku="RACE")
    assert product.version == 2
    assert product.stock in (11, 12)
    assert OutboxEvent.objects.filter(event_type="ProductRestocked").count() == 1


def test_stock_never_goes_negative_when_many_orders_race_for_the_last_unit():
    # given: one unit left and eight pending orders for it
    customer: CustomerRecord = CustomerRecordFactory()
    ProductRecordFactory(sku="LAST", stock=1, price=Decimal("5.00"))
    mediator = build_mediator()
    order_ids = []
    for _ in range(8):
        placed = mediator.send(
            PlaceOrder(
                idempotency_key=uuid.uuid4(),
                customer_id=customer.customer_id,
                lines=(OrderLineRequest("LAST", 1),),
                payment_token="tok_ok",
            ),
            SYSTEM,
        )
        order_ids.append(placed.body["order_id"])
    barrier = threading.Barrier(len(order_ids))
    outcomes = []

    def reserve(order_id: str) -> None:
        barrier.wait(timeout=30)
        outcomes.append(
            mediator.send(ReserveInventory(idempotency_key=uuid.uuid4(), order_id=uuid.UUID(order_id)), SYSTEM)
        )
        connection.close()

    # when
    threads = [threading.Thread(target=reserve, args=(order_id,)) for order_id in order_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # then
    assert sorted(o.body["reserved"] for o in outcomes) == [False] * 7 + [True]
    product = ProductRecord.objects.get(sku="LAST")
    assert (product.stock, product.reserved, product.sold) == (1, 1, 0)
    assert OrderRecord.objects.filter(reserved=True).count() == 1
    assert OutboxEvent.objects.filter(event_type="InventoryReserved").count() == 1
    assert OutboxEvent.objects.filter(event_type="InventoryReservationFailed").count() == 7


def test_a_restock_racing_a_reservation_keeps_the_books_straight():
    # given
    customer: CustomerRecord = CustomerRecordFactory()
    ProductRecordFactory(sku="BOOK", stock=2)
    mediator = build_mediator()
    order = mediator.send(
        PlaceOrder(
            idempotency_key=uuid.uuid4(),
            customer_id=customer.customer_id,
            lines=(OrderLineRequest("BOOK", 2),),
            payment_token="tok_ok",
        ),
        SYSTEM,
    ).body["order_id"]
    barrier = threading.Barrier(2)

    def run(command):
        barrier.wait(timeout=30)
        mediator.send(command, SYSTEM)
        connection.close()

    # when
    threads = [
        threading.Thread(target=run, args=(ReserveInventory(idempotency_key=uuid.uuid4(), order_id=uuid.UUID(order)),)),
        threading.Thread(target=run, args=(RestockProduct(idempotency_key=uuid.uuid4(), sku="BOOK", quantity=3),)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # then: versions are contiguous and available = stock - reserved - sold
    product = ProductRecord.objects.get(sku="BOOK")
    assert (product.stock, product.reserved, product.version) == (5, 2, 3)
    versions = sorted(OutboxEvent.objects.filter(aggregate_id="BOOK").values_list("aggregate_version", flat=True))
    assert versions == [2, 3]
