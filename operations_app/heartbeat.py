"""Recording and reading schedulers' heartbeats (operations_app.models.SchedulerHeartbeat)."""

import os
import socket
from datetime import datetime

import structlog
from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from operations_app.models import SchedulerHeartbeat

log = structlog.get_logger(__name__)
BEAT = "beat"


def record(*, name: str, runner: str, period_seconds: float, started_at: datetime) -> bool:
    """Write this process's heartbeat; False (and a warning) when the database cannot take it."""
    close_old_connections()  # a connection that broke (the database restarted) is replaced, not reused
    try:
        SchedulerHeartbeat.objects.update_or_create(
            name=name,
            defaults={
                "runner": runner,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "period_seconds": period_seconds,
                "started_at": started_at,
                "beaten_at": timezone.now(),
            },
        )
    except DatabaseError:
        log.warning("scheduler.heartbeat_failed", scheduler=name, exc_info=True)
        return False
    return True


def last(name: str = BEAT) -> SchedulerHeartbeat | None:
    return SchedulerHeartbeat.objects.filter(name=name).first()
