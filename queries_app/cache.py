"""Cached answers of the HIGHLY_EVENTUAL queries: a TTL bounds their age, and projections invalidate them.

Keys carry a generation, so a replay forgets every answer at once by moving to a new generation.
"""

from typing import Any
from uuid import uuid4

from django.conf import settings
from django.core.cache import cache

_GENERATION = "read:cache-generation:{scope}"


def _generation(scope: str) -> str:
    generation = cache.get(_GENERATION.format(scope=scope))
    if generation is None:
        generation = uuid4().hex
        if not cache.add(_GENERATION.format(scope=scope), generation, timeout=None):
            generation = cache.get(_GENERATION.format(scope=scope)) or generation
    return str(generation)


def product_key(sku: str) -> str:
    return _product_key(_generation("products"), sku)


def _product_key(generation: str, sku: str) -> str:
    return f"read:product:{generation}:{sku}"


def best_sellers_key(limit: int) -> str:
    return f"read:best-sellers:{_generation('best-sellers')}:{limit}"


def get(key: str) -> Any:
    return cache.get(key)


def put(key: str, value: Any) -> None:
    cache.set(key, value, timeout=settings.QUERY_CACHE_SECONDS)


def invalidate_product(*skus: str) -> None:
    """Forget these products' answers: two round trips, however many skus."""
    generation = _generation("products")
    cache.delete_many([_product_key(generation, sku) for sku in skus])


def invalidate_products() -> None:
    cache.set(_GENERATION.format(scope="products"), uuid4().hex, timeout=None)


def invalidate_best_sellers() -> None:
    cache.set(_GENERATION.format(scope="best-sellers"), uuid4().hex, timeout=None)
