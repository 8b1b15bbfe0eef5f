"""The Celery application; its configuration comes from Django settings (CELERY_* names)."""

import os
from typing import Any

from celery import Celery
from celery.signals import beat_init, task_postrun, task_prerun, worker_init

from observability import tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Celery's Django fixup closes every database connection before and after each task unless told to reuse them:
# a new PostgreSQL connection per task costs about as much as a small relay run or projection batch
# (docs/benchmarks.md, "Measured choices in the code"). Reuse connections, as a web request does: per task,
# Django's close_old_connections() drops one that errored or outlived CONN_MAX_AGE (and CONN_HEALTH_CHECKS
# pings it before its next use); the fixup still recycles them every thousand tasks.
app.conf["CELERY_DB_REUSE_MAX"] = 1000


@worker_init.connect
@beat_init.connect
def configure_tracing(**kwargs: Any) -> None:
    """Workers and beat trace when OTEL_* asks (observability/tracing.py). A prefork worker sets it up before it
    forks its pool: OpenTelemetry's span processors restart their export thread in each child."""
    tracing.configure()


@task_prerun.connect
@task_postrun.connect
def close_old_connections(sender: Any = None, **kwargs: Any) -> None:
    if sender is not None and getattr(sender.request, "is_eager", False):
        return  # an eager task runs inside the caller's request or command: its connection is not ours
    from django.db import close_old_connections as close

    close()
