"""The payment provider port: what the write side needs from a card processor, and nothing more.

Both calls take an idempotency key: the same key always gets the same answer, so a retried command never
authorizes twice. Transient failures (the provider down or not answering in time) raise
PaymentProviderUnavailable; a decline is an answer, not a failure.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol
from uuid import UUID

# The error code of a command whose provider call failed, with its HTTP status (retry later).
PAYMENT_PROVIDER_UNAVAILABLE = "PAYMENT_PROVIDER_UNAVAILABLE"
ERROR_STATUS = {PAYMENT_PROVIDER_UNAVAILABLE: 503}


class PaymentProviderUnavailable(Exception):
    """The provider did not answer (down, or past our timeout): the call may be retried with the same key."""


@dataclass(frozen=True)
class Authorized:
    authorization_id: str


@dataclass(frozen=True)
class Declined:
    reason: str


class PaymentProvider(Protocol):
    def authorize(
        self, *, idempotency_key: str, order_id: UUID, amount: Decimal, token: str
    ) -> Authorized | Declined: ...

    def void(self, *, idempotency_key: str, authorization_id: str) -> None: ...

    def void_authorized_with(self, *, idempotency_key: str, authorization_key: str) -> str | None:
        """Void what authorize() made with `authorization_key` (its idempotency key), if anything, and return that
        authorization's id; an authorize() with that key afterwards is declined. (A real provider: look the
        authorization up by the key, which the request carried as its idempotency key and reference.)"""
        ...
