"""Units sold per sku: a Redis sorted set (the hot read model), or the read_best_seller table without Redis.

Redis increments are not idempotent, and they cannot join the database transaction that advances the
projection's position. So each event is applied by one Lua script that adds its event id to an "applied"
set and increments only if the id was new: a redelivery, or a retry after the database transaction rolled
back, is a no-op. The script runs inside the apply transaction, before it commits, so a crash can never
lose an increment (it can only leave one that the next delivery recognises).
"""

from collections import Counter
from collections.abc import Iterable
from typing import Protocol

from django.conf import settings
from django.db import connections
from django_redis import get_redis_connection
from redis import Redis

from queries_app.models import BestSeller
from queries_app.projection_engine.rows import Rows

UNITS_KEY = "read:{best-sellers}:units"
APPLIED_KEY = "read:{best-sellers}:applied"

_ADD_SALES = """
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then
  return 0
end
for i = 2, #ARGV, 2 do
  redis.call('ZINCRBY', KEYS[1], ARGV[i + 1], ARGV[i])
end
return 1
"""

_SWAP = """
for i = 1, #KEYS, 2 do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('RENAME', KEYS[i], KEYS[i + 1])
  else
    redis.call('DEL', KEYS[i + 1])
  end
end
return 1
"""


def in_redis() -> bool:
    return bool(settings.REDIS_URL)


def client() -> Redis:
    return get_redis_connection("default")


class SalesCounter(Protocol):
    def add(self, event_id: str, units: dict[str, int]) -> None: ...


class RedisSales:
    def __init__(self, suffix: str = "") -> None:
        self.keys = [UNITS_KEY + suffix, APPLIED_KEY + suffix]

    def add(self, event_id: str, units: dict[str, int]) -> None:
        args: list[str | int] = [event_id]
        for sku, quantity in units.items():
            args += [sku, quantity]
        client().eval(_ADD_SALES, 2, *self.keys, *args)


class TableSales:
    def __init__(self, rows: Rows) -> None:
        self.rows = rows

    def add(self, event_id: str, units: dict[str, int]) -> None:
        for sku, quantity in units.items():
            self.rows.get_or_create(BestSeller, sku).units_sold += quantity


class MemorySales:
    """The Redis read model folded in memory (a replay or a verification)."""

    def __init__(self) -> None:
        self.units: Counter[str] = Counter()
        self.applied: set[str] = set()

    def add(self, event_id: str, units: dict[str, int]) -> None:
        if event_id not in self.applied:
            self.applied.add(event_id)
            self.units.update(units)


def write_shadow(sales: MemorySales, *, chunk: int = 5000) -> None:
    redis = client()
    redis.delete(UNITS_KEY + "_shadow", APPLIED_KEY + "_shadow")
    items = list(sales.units.items())
    for start in range(0, len(items), chunk):
        redis.zadd(UNITS_KEY + "_shadow", dict(items[start : start + chunk]))
    applied = list(sales.applied)
    for start in range(0, len(applied), chunk):
        redis.sadd(APPLIED_KEY + "_shadow", *applied[start : start + chunk])


def drop_shadow() -> None:
    client().delete(UNITS_KEY + "_shadow", APPLIED_KEY + "_shadow")


def swap_shadow() -> None:
    client().eval(_SWAP, 4, UNITS_KEY + "_shadow", UNITS_KEY, APPLIED_KEY + "_shadow", APPLIED_KEY)


def live_state() -> tuple[dict[str, int], set[str]]:
    """The live sorted set and applied set, read in one MULTI so they agree with each other."""
    pipeline = client().pipeline(transaction=True)
    pipeline.zrange(UNITS_KEY, 0, -1, withscores=True)
    pipeline.smembers(APPLIED_KEY)
    units, applied = pipeline.execute()
    return {sku.decode(): int(score) for sku, score in units}, {event_id.decode() for event_id in applied}


# Units sold per sku from the order view: confirmed orders' lines, ranked as Redis ranks them.
_FROM_ORDERS = """
SELECT line ->> 'sku' AS sku, SUM((line ->> 'quantity')::int) AS units
FROM read_order, jsonb_array_elements(lines) AS line
WHERE status = 'confirmed'
GROUP BY 1
ORDER BY units DESC, sku DESC
LIMIT %s
"""


def top_from_orders(limit: int, *, using: str) -> list[tuple[str, int]]:
    """The same ranking computed from the order view (one aggregate over the confirmed orders): the answer while
    Redis, which holds the best-sellers read model, is unreachable. Slower, and behind by the orders projection's
    lag instead of best_sellers', but an answer."""
    with connections[using].cursor() as cursor:
        cursor.execute(_FROM_ORDERS, [limit])
        return [(sku, int(units)) for sku, units in cursor.fetchall()]


def top(limit: int, *, using: str | None = None) -> list[tuple[str, int]]:
    """The best sellers, most units first (ties: sku descending, as Redis ranks them)."""
    if in_redis():
        ranked: list[tuple[bytes, float]] = client().zrevrange(UNITS_KEY, 0, limit - 1, withscores=True)  # type: ignore[assignment]
        return [(sku.decode(), int(score)) for sku, score in ranked]
    rows: Iterable[tuple[str, int]] = (
        BestSeller.objects.using(using).order_by("-units_sold", "-sku").values_list("sku", "units_sold")[:limit]
    )
    return list(rows)
