"""Health endpoints: /healthz (the process answers) and /readyz (dependencies reachable, backlogs bounded)."""

import time
from collections.abc import Callable
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone

from outbox_app.models import OutboxEvent

Check = Callable[[], dict[str, Any]]


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def check_database() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"vendor": connection.vendor}


def check_redis() -> dict[str, Any]:
    if not settings.REDIS_URL:
        return {"skipped": "embedded default: in-process cache"}
    from django_redis import get_redis_connection

    get_redis_connection("default").ping()
    return {}


def check_broker() -> dict[str, Any]:
    if settings.EMBEDDED:
        return {"skipped": "embedded default: tasks run in-process"}
    with current_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return {}


def check_outbox() -> dict[str, Any]:
    oldest = (
        OutboxEvent.objects.filter(published_at__isnull=True, dead_at__isnull=True)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    age = (timezone.now() - oldest).total_seconds() if oldest else 0.0
    limit = settings.READY_MAX_OUTBOX_AGE_SECONDS
    if age > limit:
        raise RuntimeError(f"the oldest unpublished event is {age:.1f}s old (limit {limit}s)")
    return {"oldest_unpublished_age_seconds": round(age, 3)}


def check_projections() -> dict[str, Any]:
    """Lag as last measured by beat (queries_app.measure_projection_lag): reading it costs nothing."""
    from queries_app.metrics import last_measured

    measured = last_measured()
    if not measured:
        return {"skipped": "not measured yet (beat measures every 15 s)"}
    limit = settings.READY_MAX_PROJECTION_LAG_SECONDS
    behind = {name: figures["age_seconds"] for name, figures in measured.items() if figures["age_seconds"] > limit}
    if behind:
        raise RuntimeError(f"projections behind by more than {limit}s: {behind}")
    return {"lag_seconds": {name: figures["age_seconds"] for name, figures in measured.items()}}


def check_replica() -> dict[str, Any]:
    """The read replica's delay. A replica away does not make the process unready: its reads go to the primary."""
    from queries_app.routers import replica_status

    replica = replica_status()
    if replica is None:
        return {"skipped": "no REPLICA_DATABASE_URL"}
    return {"delay_seconds": replica.delay_seconds, "serves_reads": replica.serves_reads, "detail": str(replica)}


READINESS_CHECKS: dict[str, Check] = {
    "database": check_database,
    "redis": check_redis,
    "broker": check_broker,
    "outbox": check_outbox,
    "projections": check_projections,
    "replica": check_replica,
}


# The process serves without these, degraded (docs/scaling.md, "When a dependency goes away"): Redis away, the
# rate limit and the caches are skipped and idempotency keeps to the database; the broker away, commands are
# accepted and their events wait in the outbox. Failing readiness for them would take every web process out
# of the load balancer at once, turning a degraded service into none.
DEGRADED_WITHOUT = {"redis", "broker"}


def readyz(request: HttpRequest) -> JsonResponse:
    results: dict[str, Any] = {}
    failing, degraded = False, False
    for name, check in READINESS_CHECKS.items():
        started = time.perf_counter()
        try:
            detail = check()
            results[name] = {"status": "ok", **detail}
        except Exception as error:
            status = "degraded" if name in DEGRADED_WITHOUT else "failing"
            failing, degraded = failing or status == "failing", degraded or status == "degraded"
            results[name] = {"status": status, "error": f"{type(error).__name__}: {error}"[:500]}
        results[name]["duration_ms"] = round((time.perf_counter() - started) * 1000, 2)
    overall = "failing" if failing else "degraded" if degraded else "ok"
    return JsonResponse({"status": overall, "checks": results}, status=503 if failing else 200)
