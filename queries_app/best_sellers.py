"""Best sellers: units sold per sku, in PostgreSQL (read_best_seller), counted exactly once per confirmed order.

Each confirmed order adds its units to its skus' rows in the same transaction that advances the projection's
position for the order, so the position alone makes a redelivery harmless: no applied set to keep, nothing that
grows with the log, and nothing a cache eviction or a cache flush can reach. The ranking reads the table's
(-units_sold, -sku) index; the query cache (Redis) only saves that read.
"""

from queries_app.models import BestSeller


def top(limit: int, *, using: str | None = None) -> list[tuple[str, int]]:
    """The best sellers, most units first (ties: sku descending)."""
    return list(
        BestSeller.objects.using(using).order_by("-units_sold", "-sku").values_list("sku", "units_sold")[:limit]
    )
