"""Best sellers: units sold per sku, from the lines of confirmed orders (the read_best_seller table)."""

from collections.abc import Iterable
from typing import cast

from queries_app import cache
from queries_app.envelopes import Envelope, OrderConfirmedPayload
from queries_app.models import BestSeller
from queries_app.projection_engine.projection import ApplyContext, Projection, handles
from queries_app.projection_engine.rows import Need

# Whether a batch has asked for the cached answers to go once it commits, in its ApplyContext's scratch.
INVALIDATED = "best sellers invalidated"


class BestSellersProjection(Projection):
    name = "best_sellers"
    follows = ("Order",)
    models = (BestSeller,)
    # Units count once an order is confirmed; nothing before changes them, and a confirmed order stays confirmed.
    ignores = frozenset(
        {
            "OrderPlaced",
            "InventoryReservationFailed",
            "PaymentAuthorized",
            "PaymentDeclined",
            "PaymentVoided",
            "OrderCancelled",
        }
    )

    def needs(self, envelope: Envelope) -> Iterable[Need]:
        if envelope["event_type"] == "OrderConfirmed":
            for line in cast(OrderConfirmedPayload, envelope["payload"])["lines"]:
                yield Need(BestSeller, line["sku"], create=True)

    @handles("OrderConfirmed")
    def confirmed(self, ctx: ApplyContext, envelope: Envelope) -> None:
        payload = cast(OrderConfirmedPayload, envelope["payload"])
        for line in payload["lines"]:
            ctx.rows.get_or_create(BestSeller, line["sku"]).units_sold += line["quantity"]
        # Once per batch, however many orders it confirms.
        if not ctx.scratch.get(INVALIDATED):
            ctx.scratch[INVALIDATED] = True
            ctx.on_commit(cache.invalidate_best_sellers)

    def invalidate_caches(self) -> None:
        cache.invalidate_best_sellers()
