"""The fast tier of idempotency: an atomic claim and completion per (client, key), in Redis via Lua.

The durable tier is the IdempotencyRecord row written with the aggregate (see idempotency.py); this tier
only adds the quick answers: a finished command's stored response, and 409 while one is running.
"""

import json
from dataclasses import dataclass
from typing import Any, Protocol

from django.core.cache import BaseCache
from redis import Redis
from redis.exceptions import RedisError


class FastPathUnavailable(Exception):
    """The fast tier cannot answer (Redis down); the durable tier alone keeps commands correct."""


@dataclass(frozen=True)
class StoredResponse:
    """What a key answers: a status with its body, or a business error (code, message, details and the
    correlation id of the request that got it), and the headers."""

    status_code: int
    body: dict[str, Any]
    headers: dict[str, str]
    error: dict[str, Any] | None = None


@dataclass(frozen=True)
class Claim:
    """`claimed`: this request runs the command; `in_progress` or `done`: another one did or does."""

    state: str
    request_hash: str = ""
    status_code: int | None = None
    body: dict[str, Any] | None = None
    headers: dict[str, str] | None = None
    error: dict[str, Any] | None = None


class FastPath(Protocol):
    def claim(self, key: str, request_hash: str, ttl_seconds: int) -> Claim: ...

    def complete(self, key: str, request_hash: str, response: "StoredResponse", ttl: int) -> None: ...

    def release(self, key: str, request_hash: str) -> None: ...


_CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'state', 'in_progress', 'hash', ARGV[1])
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  return {'claimed', ARGV[1], '', ''}
end
local r = redis.call('HMGET', KEYS[1], 'state', 'hash', 'status', 'response')
return {r[1] or '', r[2] or '', r[3] or '', r[4] or ''}
"""

_COMPLETE = """
if redis.call('HGET', KEYS[1], 'hash') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'done', 'status', ARGV[2], 'response', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""

_RELEASE = """
if redis.call('HGET', KEYS[1], 'state') == 'in_progress' and redis.call('HGET', KEYS[1], 'hash') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisFastPath:
    prefix = "idempotency:"

    def __init__(self, client: Redis) -> None:
        self._client = client
        self._claim = client.register_script(_CLAIM)
        self._release = client.register_script(_RELEASE)

    def claim(self, key: str, request_hash: str, ttl_seconds: int) -> Claim:
        try:
            state, stored_hash, status, response = self._claim(
                keys=[self.prefix + key], args=[request_hash, ttl_seconds]
            )
        except RedisError as error:
            raise FastPathUnavailable(str(error)) from error
        state, stored_hash = _text(state), _text(stored_hash)
        if state != "done":
            return Claim(state=state or "in_progress", request_hash=stored_hash)
        stored = json.loads(_text(response))
        return Claim(state, stored_hash, int(_text(status)), stored["body"], stored["headers"], stored.get("error"))

    def complete(self, key: str, request_hash: str, response: StoredResponse, ttl: int) -> None:
        # JSON text keeps the body's keys in their order, so a replay renders the same bytes.
        text = json.dumps({"body": response.body, "headers": response.headers, "error": response.error})
        try:
            self._send_without_reply(
                "EVAL", _COMPLETE, 1, self.prefix + key, request_hash, response.status_code, text, ttl
            )
        except RedisError as error:
            raise FastPathUnavailable(str(error)) from error

    def release(self, key: str, request_hash: str) -> None:
        try:
            self._release(keys=[self.prefix + key], args=[request_hash])
        except RedisError as error:
            raise FastPathUnavailable(str(error)) from error

    def _send_without_reply(self, *command: Any) -> None:
        """Send one command and do not wait for its answer: `CLIENT REPLY SKIP` asks Redis not to send one.

        The completion is written to the socket before the command's response is returned, and Redis runs it on
        arrival, so a retry that sees the response finds `done`. Were it ever late or lost (a Redis restart),
        the claim stays `in_progress` until its TTL and a retry meanwhile gets 409 and Retry-After, never a
        second run: the durable record answers once the claim expires. EVAL rather than EVALSHA, so a script
        cache emptied by a restart cannot make it fail unseen (Redis caches the script on EVAL too).
        """
        pool = self._client.connection_pool
        connection = pool.get_connection()
        try:
            connection.send_packed_command(connection.pack_commands([("CLIENT", "REPLY", "SKIP"), command]))
        except BaseException:
            connection.disconnect()
            raise
        finally:
            pool.release(connection)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class CacheFastPath:
    """The embedded default's fast tier: Django's in-process cache (one process, so add() is atomic)."""

    prefix = "idempotency:"

    def __init__(self, cache: BaseCache) -> None:
        self.cache = cache

    def claim(self, key: str, request_hash: str, ttl_seconds: int) -> Claim:
        if self.cache.add(self.prefix + key, {"state": "in_progress", "hash": request_hash}, ttl_seconds):
            return Claim("claimed", request_hash)
        stored = self.cache.get(self.prefix + key) or {"state": "in_progress", "hash": ""}
        return Claim(
            stored["state"],
            stored["hash"],
            stored.get("status"),
            stored.get("body"),
            stored.get("headers"),
            stored.get("error"),
        )

    def complete(self, key: str, request_hash: str, response: StoredResponse, ttl: int) -> None:
        value = {
            "state": "done",
            "hash": request_hash,
            "status": response.status_code,
            "body": response.body,
            "headers": response.headers,
            "error": response.error,
        }
        self.cache.set(self.prefix + key, value, ttl)

    def release(self, key: str, request_hash: str) -> None:
        stored = self.cache.get(self.prefix + key)
        if stored and stored["state"] == "in_progress" and stored["hash"] == request_hash:
            self.cache.delete(self.prefix + key)
