"""Per-client rate limiting, counted atomically in Redis (one Lua call per request), 429 with Retry-After.

A fixed one-minute window per API client. A client may carry its own limit; otherwise API_RATE_LIMIT_PER_MINUTE
applies. With Redis unreachable the limiter lets requests through (logged): availability over strictness.
"""

import functools
import time
from typing import Any

import structlog
from django.conf import settings
from django.core.cache import cache
from redis.commands.core import Script
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from api_common.models import ApiClient

log = structlog.get_logger(__name__)
WINDOW_SECONDS = 60

_COUNT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""


@functools.cache
def _count_script() -> Script:
    """The script, sent by its SHA (EVALSHA); redis-py loads it again when Redis answers NOSCRIPT."""
    from django_redis import get_redis_connection

    return get_redis_connection("default").register_script(_COUNT)


def _count_in_redis(key: str) -> int:
    return int(_count_script()(keys=[key], args=[WINDOW_SECONDS + 1]))


def _count_in_cache(key: str) -> int:
    cache.add(key, 0, WINDOW_SECONDS + 1)
    return int(cache.incr(key))


class ClientRateThrottle(BaseThrottle):
    def __init__(self) -> None:
        self.retry_after: float | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        client = request.user
        if not isinstance(client, ApiClient):
            return True  # unauthenticated requests are refused before they cost anything
        limit = client.rate_limit_per_minute or settings.API_RATE_LIMIT_PER_MINUTE
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        key = f"throttle:{client.id}:{window}"
        try:
            count = _count_in_redis(key) if settings.REDIS_URL else _count_in_cache(key)
        except Exception as error:
            log.warning("throttle.degraded", reason=str(error))
            return True
        if count > limit:
            self.retry_after = (window + 1) * WINDOW_SECONDS - now
            return False
        return True

    def wait(self) -> float | None:
        return self.retry_after
