"""The fake payment provider: deterministic by token, and the only simulated system in the service.

Tokens: `tok_ok` authorizes; `tok_declined` declines; `tok_timeout` never answers (it waits the provider
timeout, then raises PaymentProviderUnavailable); `tok_flaky` is unavailable twice per idempotency key, then
authorizes. Each may carry a unique suffix (`tok_ok_3f9c...`), as a real provider's tokens are unique per card.
Any other token is declined as unknown. An authorization can be voided by the key it was made with
(`void_authorized_with`), after which that key authorizes nothing.

Its state lives in Django's cache (Redis in production settings, in-process on the embedded default), not
in the command's database transaction: like a real provider's, an authorization made by a command that
then rolls back still exists, and only the idempotency key keeps a retry from authorizing twice.
"""

import itertools
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.core.cache import BaseCache

from commands_app.payments.port import Authorized, Declined, PaymentProviderUnavailable

PREFIX = "fakepay:"
BEHAVIOURS = ("tok_ok", "tok_declined", "tok_timeout", "tok_flaky")
STATE_TTL_SECONDS = 30 * 24 * 3600
FLAKY_FAILURES = 2
# Authorization ids derive from the idempotency key, so the same key always names the same authorization.
AUTHORIZATION_NAMESPACE = uuid.UUID("6f1c2a52-0c1e-4d6b-9a57-2f0e3b1d8c41")


@dataclass(frozen=True)
class FakeAuthorization:
    authorization_id: str
    order_id: str
    amount: Decimal
    voided: bool


class FakePaymentProvider:
    def __init__(self, *, cache: BaseCache, timeout_seconds: float) -> None:
        self.cache = cache
        self.timeout_seconds = timeout_seconds

    def authorize(self, *, idempotency_key: str, order_id: UUID, amount: Decimal, token: str) -> Authorized | Declined:
        attempt = self._count_attempt(idempotency_key)
        token = next((kind for kind in BEHAVIOURS if token == kind or token.startswith(kind + "_")), token)
        if token == "tok_timeout":
            time.sleep(self.timeout_seconds)
            raise PaymentProviderUnavailable(f"The provider did not answer within {self.timeout_seconds}s.")
        if token == "tok_flaky" and attempt <= FLAKY_FAILURES:
            raise PaymentProviderUnavailable(f"The provider is unavailable (attempt {attempt}).")
        if token == "tok_declined":
            return Declined("card_declined")
        if token not in ("tok_ok", "tok_flaky"):
            return Declined("unknown_token")
        authorization_id = self._authorization_id(idempotency_key)
        if self.cache.get(f"{PREFIX}void:{authorization_id}") is not None:
            return Declined("authorization_voided")
        self._append_to_order(str(order_id), authorization_id)
        self._store(f"authorization:{authorization_id}", {"order_id": str(order_id), "amount": str(amount)})
        return Authorized(authorization_id)

    def void(self, *, idempotency_key: str, authorization_id: str) -> None:
        self._add_or_existing(f"void:{authorization_id}", idempotency_key)

    def void_authorized_with(self, *, idempotency_key: str, authorization_key: str) -> str | None:
        authorization_id = self._authorization_id(authorization_key)
        self.void(idempotency_key=idempotency_key, authorization_id=authorization_id)
        if self.cache.get(f"{PREFIX}authorization:{authorization_id}") is None:
            return None
        return authorization_id

    # --- what a test (or an operator) may ask the fake ---------------------------------------------
    def authorizations(self, order_id: UUID | str) -> list[FakeAuthorization]:
        """Every authorization created for the order, voided or not, in the order they were made."""
        found = []
        for slot in itertools.count():
            authorization_id = self.cache.get(f"{PREFIX}order:{order_id}:{slot}")
            if authorization_id is None:
                break
            record = self.cache.get(f"{PREFIX}authorization:{authorization_id}") or {}
            found.append(
                FakeAuthorization(
                    authorization_id=authorization_id,
                    order_id=str(order_id),
                    amount=Decimal(record.get("amount", "0")),
                    voided=self.cache.get(f"{PREFIX}void:{authorization_id}") is not None,
                )
            )
        return found

    def attempts(self, idempotency_key: str) -> int:
        return int(self.cache.get(f"{PREFIX}attempts:{idempotency_key}") or 0)

    # --- state -------------------------------------------------------------------------------------
    @staticmethod
    def _authorization_id(idempotency_key: str) -> str:
        return f"auth_{uuid.uuid5(AUTHORIZATION_NAMESPACE, idempotency_key).hex}"

    def _count_attempt(self, idempotency_key: str) -> int:
        key = f"{PREFIX}attempts:{idempotency_key}"
        try:
            self.cache.add(key, 0, STATE_TTL_SECONDS)
            count = self.cache.incr(key)
        except ValueError:
            count = None
        if count is None:
            raise PaymentProviderUnavailable("The provider's state store is unavailable.")
        return int(count)

    def _append_to_order(self, order_id: str, authorization_id: str) -> None:
        """An append-only list made of add() calls, atomic on every cache backend; appending twice is a no-op."""
        for slot in itertools.count():
            if self._add_or_existing(f"order:{order_id}:{slot}", authorization_id) == authorization_id:
                return

    def _add_or_existing(self, key: str, value: Any) -> Any:
        if self.cache.add(PREFIX + key, value, STATE_TTL_SECONDS):
            return value
        existing = self.cache.get(PREFIX + key)
        if existing is None:
            raise PaymentProviderUnavailable("The provider's state store is unavailable.")
        return existing

    def _store(self, key: str, value: Any) -> None:
        self.cache.set(PREFIX + key, value, STATE_TTL_SECONDS)
