"""The Celery app of a worker whose saga executor SIGKILLs itself at chosen points (tests/saga_faults.py).

`celery -A tests.saga_crash_worker worker` with SAGA_CRASH_AFTER="step:direction,..." in its environment: the
service's own app (config.celery), with the crash hook installed before the worker forks its pool, and, for the
point inside AuthorizePayment, each pool process's mediator built on the provider that kills its caller.
"""

import functools
import os
from typing import Any

from celery.signals import worker_process_init

from config.celery import app
from sagas_app import faults
from tests.saga_faults import PROVIDER_AUTHORIZED, ProviderKillingAfterAuthorizing, crash_after

POINTS = os.environ.get("SAGA_CRASH_AFTER", "").split(",")
faults.install(crash_after(POINTS))


@worker_process_init.connect
def kill_inside_the_payment_step(**kwargs: Any) -> None:
    if PROVIDER_AUTHORIZED not in POINTS:
        return
    from django.conf import settings
    from django.core.cache import cache

    from commands_app import mediator
    from commands_app.bootstrap import build_mediator

    provider = ProviderKillingAfterAuthorizing(cache=cache, timeout_seconds=settings.PAYMENT_PROVIDER_TIMEOUT_SECONDS)
    mediator.install(functools.cache(lambda: build_mediator(payment_provider=provider)))


__all__ = ["app"]
