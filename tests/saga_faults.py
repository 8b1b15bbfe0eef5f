"""Fault injection for the saga crash tests: SIGKILL the executor's own process right after a step's command answered.

Installed into a worker by tests/saga_crash_worker.py (`celery -A tests.saga_crash_worker worker`), never by the
service: the points come from SAGA_CRASH_AFTER in that worker's environment ("step:direction", comma-separated).
It fires at most once per saga and point (a marker in the cache), so the saga resumed after the crash runs on.
The point `authorize_payment:provider_authorized` kills inside AuthorizePayment instead, right after the provider
authorized and before the command committed (ProviderKillingAfterAuthorizing).
"""

import os
import signal
from collections.abc import Iterable
from typing import Any
from uuid import UUID

import structlog
from django.core.cache import cache

from commands_app.payments.fake import FakePaymentProvider
from commands_app.payments.port import Authorized, Declined
from sagas_app.faults import StepAnswered

log = structlog.get_logger("sagas")
MARKER_TTL_SECONDS = 3600


def marker(saga_id: UUID | str, point: str) -> str:
    return f"saga:crashed:{saga_id}:{point}"


def crash_after(points: Iterable[str]) -> StepAnswered:
    chosen = frozenset(p.strip() for p in points if p.strip())

    def crash(saga_id: UUID, step: str, direction: str) -> None:
        point = f"{step}:{direction}"
        if point in chosen and cache.add(marker(saga_id, point), 1, MARKER_TTL_SECONDS):
            log.warning("saga.fault_injected", saga_id=str(saga_id), point=point, pid=os.getpid())
            os.kill(os.getpid(), signal.SIGKILL)

    return crash


PROVIDER_AUTHORIZED = "authorize_payment:provider_authorized"


class ProviderKillingAfterAuthorizing(FakePaymentProvider):
    """The fake provider, whose caller's process is SIGKILLed right after an authorization, before the command
    commits (once per idempotency key): the provider holds an authorization the order never recorded."""

    def authorize(self, **kwargs: Any) -> Authorized | Declined:
        answer = super().authorize(**kwargs)
        if isinstance(answer, Authorized) and cache.add(
            marker(kwargs["idempotency_key"], PROVIDER_AUTHORIZED), 1, MARKER_TTL_SECONDS
        ):
            log.warning("saga.fault_injected", point=PROVIDER_AUTHORIZED, pid=os.getpid())
            os.kill(os.getpid(), signal.SIGKILL)
        return answer
