"""The bench's mixed event log (bench/backlog.py) is a log the projections accept as the write side's own."""

from collections import Counter
from typing import cast

import pytest

from bench.backlog import insert_mixed_events
from outbox_app.models import OutboxEvent
from queries_app.envelopes import Envelope
from queries_app.models import OrderReadModel, ParkedEvent, ProductReadModel
from queries_app.projection_engine.apply import project
from queries_app.projection_engine.replay import verify
from queries_app.projections import PROJECTIONS

pytestmark = pytest.mark.django_db(transaction=True)
BUSINESS_FLOW = {
    "CustomerRegistered",
    "InventoryReservationFailed",
    "ProductRestocked",
    "CustomerEmailChanged",
    "ProductAdded",
    "ProductPriceChanged",
    "InventoryReserved",
    "InventoryReleased",
    "OrderPlaced",
    "PaymentAuthorized",
    "PaymentDeclined",
    "OrderConfirmed",
    "OrderCancelled",
}


def test_the_mixed_log_is_applied_by_every_projection_in_relay_batches_without_drift():
    # given
    log = insert_mixed_events(4_000, seed=7)
    envelopes = [cast(Envelope, event.to_envelope()) for event in OutboxEvent.objects.order_by("created_at")]

    # when: the worker's way, messages of 500 envelopes in log order
    for start in range(0, len(envelopes), 500):
        project(envelopes[start : start + 500])

    # then: the whole business flow is in the log, nothing waited or failed, and the read models match the log
    assert (len(envelopes), log.events) == (4_000, 4_000)
    assert set(log.by_type) >= BUSINESS_FLOW
    assert Counter(e["event_type"] for e in envelopes) == log.by_type
    assert not ParkedEvent.objects.exists()
    assert {projection.name: verify(projection) for projection in PROJECTIONS} == {p.name: [] for p in PROJECTIONS}
    assert OrderReadModel.objects.count() == len(log.orders)
    assert ProductReadModel.objects.count() == len(log.skus)
    orders = OrderReadModel.objects.all()
    assert {order.status for order in orders} == {"pending", "confirmed", "cancelled"}
    assert max(len(order.lines) for order in orders) >= 3
