"""Best sellers: a Redis sorted set incremented exactly once per confirmed order, or a table without Redis."""

import pytest

from queries_app import best_sellers
from queries_app.models import AggregatePosition, BestSeller, InboxEntry
from queries_app.projection_engine.apply import project
from tests.streams import CustomerStream, OrderStream, line

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_best_sellers():
    best_sellers.client().delete(best_sellers.UNITS_KEY, best_sellers.APPLIED_KEY)
    yield
    best_sellers.client().delete(best_sellers.UNITS_KEY, best_sellers.APPLIED_KEY)


def confirmed_order(*lines):
    order = OrderStream(customer_id=CustomerStream().customer_id)
    return [order.placed(*lines), order.payment_authorized(), order.confirmed()]


def test_confirmed_orders_count_their_units_per_sku():
    # given
    first = confirmed_order(line("TEA", 2), line("CUP", 1))
    second = confirmed_order(line("TEA", 1))
    cancelled = OrderStream(customer_id=CustomerStream().customer_id)

    # when
    project([*first, *second, cancelled.placed(line("CUP", 9)), cancelled.cancelled("customer_request")])

    # then
    assert best_sellers.top(10) == [("TEA", 3), ("CUP", 1)]


def test_a_confirmed_order_is_counted_once_when_redis_saw_it_but_the_database_rolled_back():
    # given: the increment landed in Redis, then the apply transaction rolled back
    events = confirmed_order(line("TEA", 2))
    project(events)
    confirmed = events[-1]
    AggregatePosition.objects.filter(projection="best_sellers", aggregate_id=confirmed["aggregate_id"]).update(
        version=2
    )
    InboxEntry.objects.filter(projection="best_sellers", event_id=confirmed["event_id"]).delete()

    # when: the event is delivered again
    run = project([confirmed])

    # then: the position advances, the count does not
    assert run.applied == 1
    assert best_sellers.top(10) == [("TEA", 2)]


def test_the_lua_script_applies_each_event_id_once():
    # given
    sales = best_sellers.RedisSales()

    # when
    for _ in range(3):
        sales.add("event-1", {"TEA": 2})
    sales.add("event-2", {"TEA": 1})

    # then
    assert best_sellers.live_state() == ({"TEA": 3}, {"event-1", "event-2"})


def test_without_redis_the_best_sellers_are_a_table(settings):
    # given
    settings.REDIS_URL = ""

    # when
    project(confirmed_order(line("TEA", 2), line("CUP", 5)))

    # then
    assert dict(BestSeller.objects.values_list("sku", "units_sold")) == {"TEA": 2, "CUP": 5}
    assert best_sellers.top(1) == [("CUP", 5)]
    assert best_sellers.live_state() == ({}, set())
