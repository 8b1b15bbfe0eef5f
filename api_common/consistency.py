"""Consistency tokens: which aggregate versions a command wrote, signed so clients cannot forge them.

The write side issues one with every command response (X-Consistency-Token); a query that sends it
back waits until the read model has applied those versions.
"""

from dataclasses import dataclass

from django.core import signing

HEADER = "X-Consistency-Token"
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


def decode_token(token: str) -> list[AggregateVersion] | None:
    """The versions in a token, or None when it was not issued by this service."""
    try:
        raw = signing.loads(token, salt=_SALT)
        return [AggregateVersion(str(t), str(i), int(v)) for t, i, v in raw]
    except (signing.BadSignature, TypeError, ValueError):
        return None
