"""`Authorization: Token <token>` authentication against hashed API client tokens, cached per process.

Looking the client up in the database on every request was the largest cost of a query (docs/benchmarks.md),
so each process keeps the clients it authenticated for API_CLIENT_CACHE_SECONDS, keyed by the token's hash.
A change to any client (save, revoke, rotate) moves a generation stored in Redis; every request reads it, in
the same round trip that counts the request for the rate limit (api_common.throttling), and a cached client of
another generation is looked up again. So a revoked or rotated token is refused on its next request in every
process; should the generation not reach a process (Redis unreachable, or the embedded default's per-process
cache), the TTL bounds how long the old answer lives.
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import structlog
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from api_common.models import ApiClient, hash_token
from api_common.throttling import count_request

log = structlog.get_logger(__name__)
GENERATION_KEY = "api-clients:generation"


@dataclass(frozen=True)
class _Entry:
    client: ApiClient
    generation: Any
    expires_at: float


class ClientCache:
    """Authenticated API clients by token hash, valid until their TTL ends or the generation moves."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def get(self, token_hash: str) -> _Entry | None:
        """The entry while its TTL lasts, whatever its generation (the caller compares that)."""
        entry = self._entries.get(token_hash)
        if entry is None or entry.expires_at <= self.clock():
            return None
        return entry

    def put(self, token_hash: str, client: ApiClient, generation: Any) -> None:
        ttl = settings.API_CLIENT_CACHE_SECONDS
        if ttl <= 0:
            return
        with self._lock:
            now = self.clock()
            if len(self._entries) >= settings.API_CLIENT_CACHE_SIZE:
                # Expired entries first; a process that still holds too many starts afresh.
                self._entries = {k: e for k, e in self._entries.items() if e.expires_at > now}
                if len(self._entries) >= settings.API_CLIENT_CACHE_SIZE:
                    self._entries = {}
            self._entries[token_hash] = _Entry(client, generation, now + ttl)

    def clear(self) -> None:
        with self._lock:
            self._entries = {}


clients = ClientCache()


def current_generation() -> Any:
    """The generation: a plain Redis string (so a Lua script can read it), or the cache's entry without Redis."""
    if not settings.REDIS_URL:
        return cache.get(GENERATION_KEY)
    try:
        return _redis().get(GENERATION_KEY)
    except Exception as error:
        log.warning("api_clients.generation_unreadable", reason=str(error))
        return None


def forget_clients() -> None:
    """Call after changing any API client: this process forgets at once, every other one on its next request.

    The generation moves again after the transaction commits, so no process can keep a row it read before
    the change was visible.
    """
    clients.clear()
    _move_generation()
    transaction.on_commit(_move_generation)


def _move_generation() -> None:
    if not settings.REDIS_URL:
        cache.set(GENERATION_KEY, uuid4().hex, timeout=None)
        return
    try:
        _redis().set(GENERATION_KEY, uuid4().hex)
    except Exception as error:
        log.warning("api_clients.generation_not_moved", reason=str(error))


def _redis() -> Any:
    from django_redis import get_redis_connection

    return get_redis_connection("default")


@receiver(post_save, sender=ApiClient)
@receiver(post_delete, sender=ApiClient)
def _client_changed(**kwargs: Any) -> None:
    forget_clients()


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Token"

    def authenticate(self, request: Request) -> tuple[ApiClient, str] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("The Authorization header must be 'Token <token>'.")
        try:
            token = header[1].decode("ascii")
        except UnicodeDecodeError as error:
            raise exceptions.AuthenticationFailed("The token must be ASCII.") from error
        token_hash = hash_token(token)
        cached = clients.get(token_hash)
        if cached is not None:
            generation = self.count_and_read_generation(request, cached.client)
            if generation == cached.generation:
                return cached.client, token
        generation = current_generation()
        client = ApiClient.objects.active().filter(token_hash=token_hash).first()
        if client is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        clients.put(token_hash, client, generation)
        return client, token

    @staticmethod
    def count_and_read_generation(request: Request, client: ApiClient) -> Any:
        """Count the request for the rate limit and read the generation, in one Redis round trip."""
        with_redis = bool(settings.REDIS_URL)
        counted, generation = count_request(client, also_get=GENERATION_KEY if with_redis else None)
        # ClientRateThrottle compares this count with the limit instead of counting again.
        request.client_request_count = counted  # type: ignore[attr-defined]
        return generation if with_redis else current_generation()

    def authenticate_header(self, request: Any) -> str:
        return self.keyword
