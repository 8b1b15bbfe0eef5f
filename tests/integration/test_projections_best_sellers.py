"""Best sellers: units per sku in read_best_seller, counted exactly once per confirmed order by the positions."""

import pytest
from django_redis import get_redis_connection

from queries_app import best_sellers
from queries_app.models import BestSeller, InboxEntry
from queries_app.projection_engine.apply import project
from tests.streams import CustomerStream, OrderStream, line

pytestmark = pytest.mark.django_db


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
    assert dict(BestSeller.objects.values_list("sku", "units_sold")) == {"TEA": 3, "CUP": 1}


def test_a_redelivered_confirmation_counts_once_even_with_its_inbox_entry_gone():
    # given: counted once, then the inbox entry pruned (the position alone stands guard)
    events = confirmed_order(line("TEA", 2))
    project(events)
    InboxEntry.objects.filter(projection="best_sellers").delete()

    # when: the whole order is delivered again
    run = project(events)

    # then
    assert run.applied == 0
    assert best_sellers.top(10) == [("TEA", 2)]


def test_best_sellers_survive_a_flush_of_the_cache(make_api_client):
    # given: counted, and the answer cached
    reader_api = make_api_client("read")
    project(confirmed_order(line("TEA", 2), line("CUP", 5)))
    assert reader_api.get("/api/products/best-sellers").json()["results"][0]["sku"] == "CUP"

    # when: the cache's Redis database is flushed (or evicts every key)
    get_redis_connection("default").flushdb()

    # then: the ranking is intact, and the next confirmed order adds to it
    project(confirmed_order(line("TEA", 4)))
    assert best_sellers.top(10) == [("TEA", 6), ("CUP", 5)]
    results = reader_api.get("/api/products/best-sellers").json()["results"]
    assert [(r["sku"], r["units_sold"]) for r in results] == [("TEA", 6), ("CUP", 5)]
