"""Redelivery: a published event whose delivery was lost is fed to the projections from the event log."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from outbox_app.models import OutboxEvent
from queries_app import metrics
from queries_app.models import AggregatePosition, CustomerView, OrderView, ParkedEvent
from queries_app.projections import BY_NAME
from queries_app.redelivery import redeliver
from queries_app.tasks import project_events, redeliver_unapplied_events
from queries_app.testing import CustomerStream, OrderStream, line, write_to_log

pytestmark = pytest.mark.django_db

CUSTOMERS = BY_NAME["customers"]


@pytest.fixture(autouse=True)
def few_attempts(settings):
    settings.PROJECTION_MAX_ATTEMPTS = 3
    settings.PROJECTION_GAP_RETRY_SECONDS = 0
    settings.PROJECTION_REDELIVER_AFTER_SECONDS = 60
    cache.delete(metrics.CACHE_KEY)
    yield
    # A measurement of this test's old unapplied events would fail the status document in the tests after it.
    cache.delete(metrics.CACHE_KEY)


def published(envelopes, *, seconds_ago: float):
    """Write the events to the log as the relay would have published them, without delivering them."""
    logged = write_to_log(envelopes)
    then = timezone.now() - timedelta(seconds=seconds_ago)
    OutboxEvent.objects.filter(event_id__in=[e["event_id"] for e in logged]).update(created_at=then, published_at=then)
    return [{**e, "occurred_at": then.isoformat()} for e in logged]


def test_a_published_event_whose_delivery_was_lost_is_applied_from_the_log():
    # given: two events published two minutes ago that no projection ever received
    ada = CustomerStream()
    published([ada.registered(email="ada@example.org"), ada.email_changed("countess@example.org")], seconds_ago=120)

    # when
    first = redeliver(CUSTOMERS)
    again = redeliver(CUSTOMERS)

    # then
    assert (first.found, first.applied, first.parked) == (2, 2, 0)
    assert CustomerView.objects.get(customer_id=ada.customer_id).email == "countess@example.org"
    assert AggregatePosition.objects.get(projection="customers", aggregate_id=ada.customer_id).version == 2
    assert again.found == 0


def test_an_event_published_moments_ago_is_left_to_its_delivery():
    # given
    ada = CustomerStream()
    published([ada.registered()], seconds_ago=1)

    # when
    result = redeliver(CUSTOMERS)

    # then
    assert result.found == 0
    assert not CustomerView.objects.exists()


def test_a_lost_predecessor_is_applied_and_unparks_the_successor_that_waited_on_it():
    # given: version 2 was delivered and parked on the gap; version 1's delivery was lost
    ada = CustomerStream()
    registered, changed = ada.registered(email="ada@example.org"), ada.email_changed("countess@example.org")
    logged = published([registered, changed], seconds_ago=120)
    project_events.apply(args=[[logged[1]]])
    assert ParkedEvent.objects.filter(projection="customers", reason="gap").count() == 1

    # when
    result = redeliver(CUSTOMERS)

    # then: only version 1 was fed (the parked one is the operators'), and it brought version 2 along
    assert (result.found, result.applied) == (1, 2)
    assert not ParkedEvent.objects.filter(projection="customers").exists()
    assert CustomerView.objects.get(customer_id=ada.customer_id).email == "countess@example.org"


def test_an_event_that_does_not_apply_when_redelivered_is_parked_once_not_fed_every_tick():
    # given: a poisoned order event, published long ago, never delivered
    ada = CustomerStream()
    order = OrderStream(customer_id=ada.customer_id)
    placed = order.placed(line("SKU-1", 1, "10.00"))
    placed["payload"]["total"] = "ten euros"
    published([ada.registered(), placed], seconds_ago=120)
    orders = BY_NAME["orders"]

    # when
    first = redeliver(orders)
    again = redeliver(orders)

    # then
    assert (first.found, first.applied, first.parked) == (2, 1, 1)
    parked = ParkedEvent.objects.get(projection="orders")
    assert (parked.event_type, parked.reason, parked.attempts) == ("OrderPlaced", "failed", 3)
    assert not OrderView.objects.exists()
    assert again.found == 0


def test_the_beat_task_skips_projections_whose_measured_lag_is_young_and_feeds_the_others():
    # given: a lost event, and a lag measurement that says the customers projection is up to date
    ada = CustomerStream()
    published([ada.registered()], seconds_ago=120)
    fresh = {"events_behind": 0, "age_seconds": 0.0, "parked": 0, "measured_at": 0}
    cache.set(metrics.CACHE_KEY, dict.fromkeys(BY_NAME, fresh))

    # when / then: trusted the measurement
    assert redeliver_unapplied_events.apply().get() == 0
    assert not CustomerView.objects.exists()

    # when / then: the next measurement sees the old unapplied event, and the task feeds it
    metrics.measure()
    assert redeliver_unapplied_events.apply().get() >= 1
    assert CustomerView.objects.filter(customer_id=ada.customer_id).exists()
