"""The cached answers of the HIGHLY_EVENTUAL queries go once a batch that changed them commits, one ask per batch."""

import pytest

from queries_app import cache
from queries_app.projection_engine.apply import project
from tests.streams import OrderStream, ProductStream, line

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def reader(make_api_client):
    return make_api_client("read")


@pytest.fixture(autouse=True)
def no_cached_best_sellers():
    # The best sellers live in read_best_seller (emptied with the database); their cached answer in Redis does not.
    cache.invalidate_best_sellers()


def test_a_batch_changing_several_products_forgets_each_cached_product_once_it_commits(reader):
    # given: three products whose answers are cached
    teapot, mug, kettle = ProductStream(), ProductStream(), ProductStream()
    project([teapot.added("Teapot", price="19.90"), mug.added("Mug", price="5.00"), kettle.added("Kettle")])
    for product in (teapot, mug, kettle):
        assert reader.get(f"/api/products/{product.sku}").status_code == 200
        assert cache.get(cache.product_key(product.sku)) is not None

    # when: one batch changes two of them, one of them twice
    project([teapot.price_changed("24.50", "19.90"), mug.price_changed("6.00", "5.00"), mug.restocked(5, 15, 15)])

    # then: both are gone from the cache and answered as the read model has them; the third stays cached
    assert cache.get(cache.product_key(teapot.sku)) is None
    assert cache.get(cache.product_key(mug.sku)) is None
    assert cache.get(cache.product_key(kettle.sku)) is not None
    assert reader.get(f"/api/products/{teapot.sku}").json()["price"] == "24.50"
    answer = reader.get(f"/api/products/{mug.sku}").json()
    assert (answer["price"], answer["available"]) == ("6.00", 15)


def test_a_batch_confirming_orders_forgets_the_cached_best_sellers_once_it_commits(reader):
    # given: best sellers cached while nothing has sold
    assert reader.get("/api/products/best-sellers").json() == {"results": []}
    first, second = OrderStream(customer_id="c1"), OrderStream(customer_id="c2")

    # when: one batch confirms two orders
    project(
        [
            first.placed(line("TEA", 2)),
            second.placed(line("TEA", 1), line("MUG", 4)),
            first.confirmed(),
            second.confirmed(),
        ]
    )

    # then
    ranked = reader.get("/api/products/best-sellers").json()["results"]
    assert [(seller["sku"], seller["units_sold"]) for seller in ranked] == [("MUG", 4), ("TEA", 3)]
