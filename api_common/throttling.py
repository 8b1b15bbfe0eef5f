"""Per-client rate limiting, counted atomically in Redis (one Lua call per request), 429 with Retry-After.

A fixed one-minute window per API client. A client may carry its own limit; otherwise API_RATE_LIMIT_PER_MINUTE
applies. With Redis unreachable the limiter lets requests through (logged): availability over strictness.

The count can ride along with another read: authentication counts a request while it reads the API clients'
generation (api_common.authentication), so a request costs one Redis round trip for both, and the throttle
then only compares that count with the limit.
"""

import functools
import time
from dataclasses import dataclass
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

# KEYS[1] the window's counter; KEYS[2], when given, a key read in the same call.
_COUNT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
if KEYS[2] then return {n, redis.call('GET', KEYS[2])} end
return {n, false}
"""


@dataclass(frozen=True)
class Count:
    """A request counted in its client's window: `count` is None when the counter was unreachable."""

    client_id: Any
    window: int
    count: int | None


@functools.cache
def _count_script() -> Script:
    """The script, sent by its SHA (EVALSHA); redis-py loads it again when Redis answers NOSCRIPT."""
    from django_redis import get_redis_connection

    return get_redis_connection("default").register_script(_COUNT)


def count_request(client: ApiClient, *, also_get: str | None = None) -> tuple[Count, Any]:
    """Count one request of `client` in the current window; with `also_get`, read that Redis key (a plain
    string, not a Django cache entry) in the same round trip and return its value, else None."""
    window = int(time.time() // WINDOW_SECONDS)
    key = f"throttle:{client.id}:{window}"
    value = None
    try:
        if settings.REDIS_URL:
            count, value = _count_script()(keys=[key, *([also_get] if also_get else [])], args=[WINDOW_SECONDS + 1])
        else:
            cache.add(key, 0, WINDOW_SECONDS + 1)
            count = cache.incr(key)
    except Exception as error:
        log.warning("throttle.degraded", reason=str(error))
        return Count(client.id, window, None), None
    return Count(client.id, window, int(count)), value


class ClientRateThrottle(BaseThrottle):
    def __init__(self) -> None:
        self.retry_after: float | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        client = request.user
        if not isinstance(client, ApiClient):
            return True  # unauthenticated requests are refused before they cost anything
        counted = getattr(request, "client_request_count", None)
        if not isinstance(counted, Count) or counted.client_id != client.id:
            counted, _ = count_request(client)
        if counted.count is None:
            return True
        limit = client.rate_limit_per_minute or settings.API_RATE_LIMIT_PER_MINUTE
        if counted.count > limit:
            self.retry_after = (counted.window + 1) * WINDOW_SECONDS - time.time()
            return False
        return True

    def wait(self) -> float | None:
        return self.retry_after
