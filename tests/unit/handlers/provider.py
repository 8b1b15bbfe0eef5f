"""A payment provider for the handlers' unit tests: answers as told, and remembers each call."""

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

from commands_app.payments.port import Authorized, Declined, PaymentProviderUnavailable


@dataclass
class ScriptedProvider:
    answer: Authorized | Declined | None = None  # None: unavailable
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def authorize(self, *, idempotency_key: str, order_id: UUID, amount: Decimal, token: str) -> Authorized | Declined:
        self.calls.append(("authorize", {"idempotency_key": idempotency_key, "amount": amount, "token": token}))
        if self.answer is None:
            raise PaymentProviderUnavailable("the provider did not answer in time")
        return self.answer

    def void(self, *, idempotency_key: str, authorization_id: str) -> None:
        self.calls.append(("void", {"idempotency_key": idempotency_key, "authorization_id": authorization_id}))
        if self.answer is None:
            raise PaymentProviderUnavailable("the provider did not answer in time")

    def void_authorized_with(self, *, idempotency_key: str, authorization_key: str) -> str | None:
        """Voids the scripted authorization when there is one (the provider made it with that key)."""
        self.calls.append(("void_authorized_with", {"idempotency_key": idempotency_key, "key": authorization_key}))
        if self.answer is None:
            raise PaymentProviderUnavailable("the provider did not answer in time")
        return self.answer.authorization_id if isinstance(self.answer, Authorized) else None
