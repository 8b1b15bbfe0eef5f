"""Projections: each follows some aggregate types and turns their events into rows of its read tables."""

from queries_app.projection_engine.projection import Projection
from queries_app.projections.best_sellers import BestSellersProjection
from queries_app.projections.customers import CustomerProjection
from queries_app.projections.orders import OrderProjection
from queries_app.projections.products import ProductProjection

PROJECTIONS: tuple[Projection, ...] = (
    CustomerProjection(),
    OrderProjection(),
    ProductProjection(),
    BestSellersProjection(),
)
BY_NAME: dict[str, Projection] = {projection.name: projection for projection in PROJECTIONS}
