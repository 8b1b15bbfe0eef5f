"""Reconciliation: an order whose OrderPlaced delivery was lost still gets its saga, from the event log."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from outbox_app.models import OutboxEvent
from queries_app.envelopes import Envelope
from sagas_app import reconcile
from sagas_app.fulfilment import start as start_fulfilment
from sagas_app.models import Saga
from tests.streams import CustomerStream, OrderStream, line, write_to_log

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def defaults(settings):
    settings.SAGA_RECONCILE_AFTER_SECONDS = 60
    settings.SAGA_RECONCILE_OVERLAP_SECONDS = 60
    settings.SAGA_RECONCILE_WINDOW_SECONDS = 3600
    cache.delete(reconcile.WATERMARK_KEY)


def placed_orders(count: int, *, seconds_ago: float) -> list[Envelope]:
    """OrderPlaced events the relay published (in one batch: one timestamp) and nobody received."""
    envelopes = []
    for _ in range(count):
        order = OrderStream(customer_id=CustomerStream().customer_id)
        envelopes.append(order.placed(line("SKU-1", 1, "10.00")))
    logged = write_to_log(envelopes)
    OutboxEvent.objects.filter(event_id__in=[e["event_id"] for e in logged]).update(
        published_at=timezone.now() - timedelta(seconds=seconds_ago)
    )
    return logged


def sagas_for(events: list[Envelope]) -> set[str]:
    order_ids = [e["payload"]["order_id"] for e in events]
    return set(Saga.objects.filter(correlation_id__in=order_ids).values_list("correlation_id", flat=True))


def test_an_order_whose_saga_never_started_gets_one_and_only_that_one():
    # given: two orders published two minutes ago; the first one's delivery arrived
    first, lost = placed_orders(2, seconds_ago=120)
    start_fulfilment(first)

    # when
    started = reconcile.start_missed_sagas()
    again = reconcile.start_missed_sagas()

    # then
    assert len(started) == 1
    assert Saga.objects.get(saga_id=started[0]).correlation_id == lost["payload"]["order_id"]
    assert Saga.objects.count() == 2
    assert again == []


def test_an_order_published_moments_ago_is_left_to_its_delivery_until_the_threshold_passes():
    # given
    recent = placed_orders(1, seconds_ago=1)

    # when / then
    assert reconcile.start_missed_sagas() == []
    assert reconcile.start_missed_sagas(now=timezone.now() + timedelta(seconds=120)) != []
    assert sagas_for(recent) == {recent[0]["payload"]["order_id"]}


def test_a_relay_batch_larger_than_a_page_is_read_whole(monkeypatch):
    # given: seven orders sharing one published_at, read three at a time
    monkeypatch.setattr(reconcile, "PAGE", 3)
    orders = placed_orders(7, seconds_ago=120)

    # when
    started = reconcile.start_missed_sagas()

    # then
    assert len(started) == 7
    assert sagas_for(orders) == {e["payload"]["order_id"] for e in orders}


def test_without_a_watermark_it_reads_back_the_window_and_no_further():
    # given: one lost order inside the window, one older than it
    inside = placed_orders(1, seconds_ago=1800)
    outside = placed_orders(1, seconds_ago=7200)

    # when
    reconcile.start_missed_sagas()

    # then
    assert sagas_for(inside + outside) == {inside[0]["payload"]["order_id"]}
