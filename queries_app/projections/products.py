"""The product catalog: name, description, price and units available, from product events."""

from collections.abc import Iterable
from decimal import Decimal
from typing import cast

from queries_app import cache
from queries_app.envelopes import AvailabilityPayload, Envelope, ProductAddedPayload, ProductPriceChangedPayload
from queries_app.models import ProductReadModel
from queries_app.projection_engine.projection import ApplyContext, Projection, handles
from queries_app.projection_engine.rows import Need

# The skus a batch changed, in its ApplyContext's scratch.
CHANGED = "changed skus"


def _product(ctx: ApplyContext, envelope: Envelope) -> ProductReadModel:
    product = ctx.rows.get_or_create(ProductReadModel, envelope["aggregate_id"])
    product.version = envelope["aggregate_version"]
    # One invalidation per batch for all the products it changed: one per event cost more than the apply itself
    # (docs/benchmarks.md, "Measured choices in the code").
    changed: set[str] | None = ctx.scratch.get(CHANGED)
    if changed is None:
        changed = ctx.scratch[CHANGED] = set()
        ctx.on_commit(lambda: cache.invalidate_product(*changed))
    changed.add(product.sku)
    return product


class ProductProjection(Projection):
    name = "products"
    follows = ("Product",)
    owns = ("Product",)
    models = (ProductReadModel,)

    def needs(self, envelope: Envelope) -> Iterable[Need]:
        if envelope["event_type"] in self._handlers:
            yield Need(ProductReadModel, envelope["aggregate_id"], create=True)

    @handles("ProductAdded")
    def added(self, ctx: ApplyContext, envelope: Envelope) -> None:
        payload = cast(ProductAddedPayload, envelope["payload"])
        product = _product(ctx, envelope)
        product.name = payload["name"]
        product.description = payload["description"]
        product.price = Decimal(payload["price"])
        product.available = payload["available"]

    @handles("ProductPriceChanged")
    def price_changed(self, ctx: ApplyContext, envelope: Envelope) -> None:
        payload = cast(ProductPriceChangedPayload, envelope["payload"])
        _product(ctx, envelope).price = Decimal(payload["price"])

    @handles("ProductRestocked", "InventoryReserved", "InventoryReleased")
    def availability_changed(self, ctx: ApplyContext, envelope: Envelope) -> None:
        payload = cast(AvailabilityPayload, envelope["payload"])
        _product(ctx, envelope).available = payload["available"]

    def invalidate_caches(self) -> None:
        cache.invalidate_products()
