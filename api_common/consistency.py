"""Consistency tokens: which aggregate versions a command wrote, signed so clients cannot forge them; the levels.

The write side issues one with every command response (X-Consistency-Token); a query that sends it
back waits until the read model has applied those versions (the event feed: until the log has them).
Every query answers the level it was served at (Consistency) in X-Consistency-Level.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from django.core import signing

HEADER = "X-Consistency-Token"
LEVEL_HEADER = "X-Consistency-Level"
# A token names the aggregates one command wrote: more than this is not one of ours.
MAX_TOKEN_VERSIONS = 100
# What django.core.signing.dumps() makes: base64 payload, base62 timestamp, base64 SHA-256 signature.
TOKEN_PATTERN = r"^[A-Za-z0-9_-]+:[A-Za-z0-9]+:[A-Za-z0-9_-]{43}$"
_SALT = "consistency-token"


@dataclass(frozen=True)
class AggregateVersion:
    aggregate_type: str
    aggregate_id: str
    version: int


def encode_token(versions: list[AggregateVersion]) -> str:
    return signing.dumps([[v.aggregate_type, v.aggregate_id, v.version] for v in versions], salt=_SALT)


def token_versions(token: str) -> list[AggregateVersion]:
    """The versions in a token a query got back; 400 CONSISTENCY_TOKEN_INVALID when this service did not issue it."""
    from api_common.problems import Problem

    versions = decode_token(token)
    if versions is None or len(versions) > MAX_TOKEN_VERSIONS:
        raise Problem(
            status_code=400,
            code="CONSISTENCY_TOKEN_INVALID",
            detail=f"{HEADER} must be a token returned by a command of this service.",
        )
    return versions


def decode_token(token: str) -> list[AggregateVersion] | None:
    """The versions in a token, or None when it was not issued by this service."""
    try:
        raw = signing.loads(token, salt=_SALT)
        return [AggregateVersion(str(t), str(i), int(v)) for t, i, v in raw]
    except (signing.BadSignature, TypeError, ValueError):
        return None


class Consistency(StrEnum):
    STRONG = "STRONG"
    READ_YOUR_WRITES = "READ_YOUR_WRITES"
    EVENTUAL = "EVENTUAL"
    HIGHLY_EVENTUAL = "HIGHLY_EVENTUAL"


def wait_until(
    done: Callable[[], bool],
    *,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    first_pause: float = 0.002,
    growth: float = 1.5,
    max_pause: float = 0.05,
) -> bool:
    """Poll `done` with growing pauses until it is true (True) or `timeout` seconds have passed (False).

    The pauses start short and grow slowly: a read waits on a projection that usually catches up within
    milliseconds, and a probe costs one indexed read, while a pause that overshoots adds its whole length to
    the answer (docs/benchmarks.md, "Orders")."""
    deadline = clock() + timeout
    pause = first_pause
    while True:
        if done():
            return True
        remaining = deadline - clock()
        if remaining <= 0:
            return False
        sleep(min(pause, remaining))
        pause = min(pause * growth, max_pause)
