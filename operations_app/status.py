"""The status document: is the whole service doing its work, and if not, what waits on what.

Served as /healthz (200 when every check is ok, 503 otherwise) and printed by `manage.py status` (exit code 0 ok,
2 failing, 3 unknown: the monitoring plugins' convention). Each check reads what is cheap to read: the outbox's
partial indexes, the projection lag that beat measured (queries_app.metrics), the saga table's status index and
beat's heartbeat row. A check that raises is failing, with the error; the others still run.

A check is "unknown" when the figures it would judge are missing or too old to judge: a lag measured more than
two measurement periods ago says nothing about now, so it is never reported "ok".
"""

import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

OK, UNKNOWN, FAILING = "ok", "unknown", "failing"
_SEVERITY = {OK: 0, UNKNOWN: 1, FAILING: 2}
EXIT_CODES = {OK: 0, FAILING: 2, UNKNOWN: 3}

Check = Callable[[], dict[str, Any]]


def worst(statuses: Iterable[str]) -> str:
    return max(statuses, key=_SEVERITY.__getitem__, default=OK)


def check_database() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"status": OK, "summary": connection.vendor}


def check_cache() -> dict[str, Any]:
    if not settings.REDIS_URL:
        return {"status": OK, "summary": "in-process cache (embedded default)"}
    from django_redis import get_redis_connection

    # The cache itself ignores Redis errors (a miss instead of a failed request): ask Redis directly.
    get_redis_connection("default").ping()
    return {"status": OK, "summary": "redis"}


def check_broker() -> dict[str, Any]:
    if settings.EMBEDDED:
        return {"status": OK, "summary": "none: tasks run in-process (embedded default)"}
    with current_app.connection_for_write() as broker:
        broker.ensure_connection(max_retries=1, interval_start=0, timeout=2)
        return {"status": OK, "summary": broker.transport_cls}


def check_outbox() -> dict[str, Any]:
    from outbox_app.operations import read_backlog

    backlog = read_backlog()
    age = backlog.oldest_pending_age_seconds or 0.0
    limit = settings.HEALTH_MAX_OUTBOX_AGE_SECONDS
    problems = []
    if age > limit:
        problems.append(f"the oldest event waiting for the relay is {age:.1f} s old (limit {limit:g} s)")
    if backlog.dead:
        problems.append(f"{backlog.dead} event(s) parked as dead: requeue them (admin, outbox_status)")
    return {
        "status": FAILING if problems else OK,
        "summary": "; ".join(problems) or f"backlog {backlog.pending}, oldest {age:.1f} s",
        "backlog": backlog.pending,
        "oldest_pending_age_seconds": round(age, 3),
        "dead": backlog.dead,
    }


def check_projections() -> dict[str, Any]:
    """Each projection's lag as beat last measured it, judged only while the measurement is fresh."""
    from queries_app.metrics import last_measured

    measured = last_measured()
    period = settings.PROJECTION_LAG_INTERVAL
    if not measured:
        why = (
            f"beat measures every {period:g} s: is beat or the projections worker down?"
            if settings.REDIS_URL
            # The embedded default's cache is the serving process's memory: another process cannot read it.
            else "on the embedded default the served process keeps it: ask /healthz, or `status --measure`"
        )
        return {"status": UNKNOWN, "summary": f"no lag measurement ({why})", "projections": {}}
    limit = settings.HEALTH_MAX_PROJECTION_LAG_SECONDS
    now = time.time()
    projections = {}
    for name, figures in sorted(measured.items()):
        measured_ago = max(now - figures["measured_at"], 0.0)
        if measured_ago > 2 * period:
            status, reason = UNKNOWN, f"measured {measured_ago:.0f} s ago (stale after {2 * period:g} s)"
        elif figures["age_seconds"] > limit:
            status, reason = FAILING, f"{figures['age_seconds']:.1f} s behind (limit {limit:g} s)"
        elif figures["parked"]:
            status, reason = FAILING, f"{figures['parked']} parked event(s): retry_parked_events or the admin"
        else:
            status, reason = OK, f"{figures['events_behind']} event(s) behind"
        projections[name] = {
            "status": status,
            "summary": reason,
            "events_behind": figures["events_behind"],
            "lag_seconds": figures["age_seconds"],
            "parked": figures["parked"],
            "measured_seconds_ago": round(measured_ago, 1),
        }
    status = worst(p["status"] for p in projections.values())
    not_ok = [f"{name}: {p['summary']}" for name, p in projections.items() if p["status"] != OK]
    return {
        "status": status,
        "summary": "; ".join(not_ok) or f"{len(projections)} projections up to date",
        "projections": projections,
    }


def check_sagas() -> dict[str, Any]:
    from sagas_app.models import Saga

    now = timezone.now()
    active = Saga.objects.filter(status__in=(Saga.Status.RUNNING, Saga.Status.COMPENSATING))
    waiting = active.filter(next_attempt_at__gt=now).count()
    # Due long ago and held by no executor: the tick (beat) or the sagas worker is not doing its work.
    overdue = (
        active.filter(next_attempt_at__lt=now - timedelta(seconds=settings.HEALTH_MAX_SAGA_DELAY_SECONDS))
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
        .count()
    )
    failed = Saga.objects.filter(status=Saga.Status.FAILED).count()
    problems = []
    if overdue:
        problems.append(f"{overdue} saga(s) due for over {settings.HEALTH_MAX_SAGA_DELAY_SECONDS:g} s and not resumed")
    if failed:
        problems.append(f"{failed} failed saga(s): resume or abort them (admin, manage.py sagas)")
    return {
        "status": FAILING if problems else OK,
        "summary": "; ".join(problems) or f"{waiting} waiting for a retry",
        "waiting_for_retry": waiting,
        "overdue": overdue,
        "failed": failed,
    }


def check_beat() -> dict[str, Any]:
    from operations_app import heartbeat

    beat = heartbeat.last()
    if beat is None:
        return {"status": FAILING, "summary": "beat has never recorded a heartbeat: is it running?"}
    age = beat.age_seconds()
    alive = beat.alive()
    return {
        "status": OK if alive else FAILING,
        "summary": (
            f"last heartbeat {age:.1f} s ago"
            if alive
            else f"no heartbeat for {age:.1f} s (dead after {beat.dead_after_seconds:g} s): beat is down or stuck"
        ),
        "last_heartbeat_seconds_ago": round(age, 1),
        "period_seconds": beat.period_seconds,
        "runner": beat.runner,
        "host": beat.host,
        "pid": beat.pid,
    }


def check_replica() -> dict[str, Any]:
    """The read replica's replay delay; away or too far behind, EVENTUAL reads go to the primary (still served)."""
    from queries_app.routers import replica_status

    replica = replica_status()
    if replica is None:
        return {"status": OK, "summary": "no replica (REPLICA_DATABASE_URL unset): every read on the primary"}
    return {
        "status": OK if replica.serves_reads else FAILING,
        "summary": str(replica),
        "delay_seconds": replica.delay_seconds,
    }


CHECKS: dict[str, Check] = {
    "database": check_database,
    "cache": check_cache,
    "broker": check_broker,
    "outbox": check_outbox,
    "projections": check_projections,
    "sagas": check_sagas,
    "beat": check_beat,
    "replica": check_replica,
}
# What this process needs to serve requests: /readyz. Nothing else may take a web process out of rotation:
# commands are accepted while the broker is down, and with Redis away too (the rate limit, the caches and the
# fast idempotency tier step aside: docs/scaling.md, "When a dependency goes away"), so failing readiness for
# either would take every web process out of the load balancer at once; lag is the read side's, not this
# process's. The status document (/healthz) reports them all.
READINESS = ("database",)


def run(names: Iterable[str] = CHECKS) -> dict[str, Any]:
    """Run the named checks; the document's status is the worst of theirs."""
    checks: dict[str, Any] = {}
    for name in names:
        started = time.perf_counter()
        try:
            result = CHECKS[name]()
        except Exception as error:
            result = {"status": FAILING, "summary": f"{type(error).__name__}: {error}"[:500]}
        result["duration_ms"] = round((time.perf_counter() - started) * 1000, 2)
        checks[name] = result
    return {
        "status": worst(check["status"] for check in checks.values()),
        "checked_at": timezone.now().isoformat(),
        "checks": checks,
    }


def measure_lag_now() -> None:
    """Measure the projection lag here and now (what beat does every PROJECTION_LAG_INTERVAL)."""
    from queries_app.metrics import measure

    measure()
