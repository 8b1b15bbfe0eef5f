"""Which projection a message's events reach first: the one whose own read model is about their aggregate."""

from queries_app.projection_engine.apply import owners_first
from queries_app.projections import PROJECTIONS


def names(aggregate_types: set[str]) -> list[str]:
    return [projection.name for projection in owners_first(PROJECTIONS, aggregate_types)]


def test_an_orders_events_reach_the_orders_projection_before_the_ones_that_count_them():
    assert names({"Order"})[0] == "orders"


def test_a_customers_events_reach_the_customers_projection_before_the_orders_copy_of_them():
    assert names({"Customer"})[0] == "customers"


def test_a_mixed_message_reaches_every_owner_first_and_the_rest_in_their_given_order():
    assert names({"Product", "Order"}) == ["orders", "products", "customers", "best_sellers"]
    assert names(set()) == [projection.name for projection in PROJECTIONS]
