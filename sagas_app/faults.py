"""Fault injection for the crash tests: SIGKILL the executor's own process right after a step's command answered.

Opt-in through SAGA_CRASH_AFTER ("step:direction" points, comma-separated), which production never sets. It
fires at most once per saga and point (a marker in the cache), so the saga resumed after the crash runs on.
The kill lands after the command committed and before the saga recorded its answer: the worst moment, when
only the idempotency key keeps the step from taking effect twice.
"""

import os
import signal
from uuid import UUID

import structlog
from django.conf import settings
from django.core.cache import cache

log = structlog.get_logger("sagas")
MARKER_TTL_SECONDS = 3600


def crash_if_injected(saga_id: UUID, step: str, direction: str) -> None:
    point = f"{step}:{direction}"
    if point not in settings.SAGA_CRASH_AFTER:
        return
    if cache.add(f"saga:crashed:{saga_id}:{point}", 1, MARKER_TTL_SECONDS):
        log.warning("saga.fault_injected", saga_id=str(saga_id), point=point, pid=os.getpid())
        os.kill(os.getpid(), signal.SIGKILL)
