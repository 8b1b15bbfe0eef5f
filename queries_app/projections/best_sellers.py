"""Best sellers: units sold per sku, from the lines of confirmed orders (Redis, or a table without it)."""

from collections import Counter
from collections.abc import Iterable
from typing import cast

from outbox_app.models import OutboxEvent
from queries_app import best_sellers, cache
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
        if envelope["event_type"] == "OrderConfirmed" and not best_sellers.in_redis():
            for line in cast(OrderConfirmedPayload, envelope["payload"])["lines"]:
                yield Need(BestSeller, line["sku"], create=True)

    @handles("OrderConfirmed")
    def confirmed(self, ctx: ApplyContext, envelope: Envelope) -> None:
        payload = cast(OrderConfirmedPayload, envelope["payload"])
        units: dict[str, int] = {}
        for line in payload["lines"]:
            units[line["sku"]] = units.get(line["sku"], 0) + line["quantity"]
        self.counter(ctx).add(envelope["event_id"], units)
        # Once per batch, however many orders it confirms.
        if not ctx.scratch.get(INVALIDATED):
            ctx.scratch[INVALIDATED] = True
            ctx.on_commit(cache.invalidate_best_sellers)

    def counter(self, ctx: ApplyContext) -> best_sellers.SalesCounter:
        if not best_sellers.in_redis():
            return best_sellers.TableSales(ctx.rows)
        if ctx.in_memory:
            return cast(best_sellers.MemorySales, ctx.scratch.setdefault("sales", best_sellers.MemorySales()))
        return best_sellers.RedisSales(ctx.suffix)

    def drop_extra_shadow(self) -> None:
        if best_sellers.in_redis():
            best_sellers.drop_shadow()

    def write_extra_fold(self, ctx: ApplyContext) -> None:
        if best_sellers.in_redis():
            best_sellers.write_shadow(ctx.scratch.get("sales") or best_sellers.MemorySales())

    def compare_extra_fold(self, ctx: ApplyContext) -> list[str]:
        """The live sorted set against the log's sales of exactly the events in its applied set.

        The applied set, not the database position, defines the Redis model: an increment lands before
        its apply transaction commits, so an event in flight is in Redis but not yet in the position.
        """
        if not best_sellers.in_redis():
            return []
        units, applied = best_sellers.live_state()
        expected: Counter[str] = Counter()
        in_log: set[str] = set()
        ids = sorted(applied)
        for start in range(0, len(ids), 5000):
            confirmed = OutboxEvent.objects.filter(event_id__in=ids[start : start + 5000], event_type="OrderConfirmed")
            for event_id, payload in confirmed.values_list("event_id", "payload"):
                in_log.add(str(event_id))
                for line in payload["lines"]:
                    expected[line["sku"]] += line["quantity"]
        drifts = [f"applied set lists {event_id}, not an OrderConfirmed of the log" for event_id in applied - in_log]
        folded = cast(best_sellers.MemorySales, ctx.scratch.get("sales") or best_sellers.MemorySales())
        drifts += [f"{event_id} is applied in the database but not in Redis" for event_id in folded.applied - applied]
        for sku in sorted(set(units) | set(expected)):
            if units.get(sku, 0) != expected.get(sku, 0):
                drifts.append(f"sku {sku}: {units.get(sku, 0)} units in Redis, {expected.get(sku, 0)} from the log")
        return drifts

    def swap_extra(self) -> None:
        if best_sellers.in_redis():
            best_sellers.swap_shadow()

    def invalidate_caches(self) -> None:
        cache.invalidate_best_sellers()
