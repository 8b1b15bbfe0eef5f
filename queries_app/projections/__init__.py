"""Projections: each follows some aggregate types and turns their events into rows of its read tables."""

from queries_app.projection_engine.projection import Projection
from queries_app.projections.best_sellers import BestSellersProjection
from queries_app.projections.customers import CustomerProjection
from queries_app.projections.orders import OrderProjection
from queries_app.projections.products import ProductProjection

# In the order a message's events are applied to them, each projection in a transaction of its own: the orders
# projection first, because a STRONG read of an order (GET /api/orders/<id>) waits until it has applied the order's
# newest event, while the others' reads are EVENTUAL (docs/benchmarks.md, "Orders").
PROJECTIONS: tuple[Projection, ...] = (
    OrderProjection(),
    CustomerProjection(),
    ProductProjection(),
    BestSellersProjection(),
)
BY_NAME: dict[str, Projection] = {projection.name: projection for projection in PROJECTIONS}
