"""End to end: a command's commit until the read model shows it, at a steady 100 commands/s.

The production processes run: gunicorn, one Celery worker (prefork, 2 processes) and beat; the relay runs as
in production (nudged on commit, and by beat every second). A paced client sends register-customer at 100/s.
Latency per command: the customer row's `updated_at` in read_customer (set by the worker's apply, just before
its commit) minus the event's `created_at` in the outbox (clock_timestamp() at insert, just before the
command's commit); both on this machine's clock.
"""

import time
import uuid
from collections.abc import Callable

from django.db import connection

from bench.client import Api, Paced
from bench.context import Context
from bench.environment import reset_tables
from bench.processes import processes
from bench.results import Figure, Section, at_most, median, percentile

RATE = 100.0
LIGHT_RATE = 20.0
# After a run, how long the worker may take to catch up before the next run (and the figure) starts.
DRAIN_SECONDS = 120.0


def visibility_ms(since: float) -> tuple[list[float], int]:
    """Latencies (ms) of the customer events created after `since` (epoch), and how many are not visible yet."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXTRACT(EPOCH FROM (r.updated_at - e.created_at)) * 1000 "
            "FROM outbox_app_outboxevent e LEFT JOIN read_customer r ON r.customer_id = e.aggregate_id::uuid "
            "AND r.version >= e.aggregate_version "
            "WHERE e.event_type = 'CustomerRegistered' AND e.created_at >= to_timestamp(%s)",
            [since],
        )
        rows = [row[0] for row in cursor.fetchall()]
    return [float(v) for v in rows if v is not None], sum(v is None for v in rows)


def latency_split(since: float) -> str:
    """p50/p99 of the two hops of the visible events: commit -> the relay's claim (published_at is the relay
    transaction's start), and that claim -> the read row's commit (publish, broker, worker, apply)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH hops AS (SELECT EXTRACT(EPOCH FROM (e.published_at - e.created_at)) * 1000 AS relay, "
            "EXTRACT(EPOCH FROM (r.updated_at - e.published_at)) * 1000 AS projection "
            "FROM outbox_app_outboxevent e JOIN read_customer r ON r.customer_id = e.aggregate_id::uuid "
            "AND r.version >= e.aggregate_version "
            "WHERE e.event_type = 'CustomerRegistered' AND e.created_at >= to_timestamp(%s)) "
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY relay), "
            "percentile_cont(0.99) WITHIN GROUP (ORDER BY relay), "
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY projection), "
            "percentile_cont(0.99) WITHIN GROUP (ORDER BY projection) FROM hops",
            [since],
        )
        relay_p50, relay_p99, projection_p50, projection_p99 = (float(v or 0) for v in cursor.fetchone())
    return (
        f"commit -> relay claim p50 {relay_p50:.1f} ms, p99 {relay_p99:.1f} ms; "
        f"relay claim -> read row p50 {projection_p50:.1f} ms, p99 {projection_p99:.1f} ms"
    )


def measure(*, api_rate: float, seconds: float, send: Callable[[int], bool]) -> tuple[float, float, float, str]:
    """Send at a steady rate, wait until the worker has caught up, and read the latencies off the database."""
    since = time.time()
    paced = Paced(rate=api_rate, seconds=seconds, send=send)
    paced.run()
    deadline = time.monotonic() + DRAIN_SECONDS
    latencies, missing = visibility_ms(since)
    while missing and time.monotonic() < deadline:
        time.sleep(0.5)
        latencies, missing = visibility_ms(since)
    p50_ms, p99_ms, max_ms = percentile(latencies, 50), percentile(latencies, 99), max(latencies, default=0.0)
    note = (
        f"{paced.sent} commands sent in {paced.elapsed:.1f}s for {seconds:.0f}s planned ({paced.ok} 2xx, "
        f"{paced.late} sent >50 ms after their slot), "
        f"{len(latencies)} visible, {missing} not visible {DRAIN_SECONDS:.0f} s after; "
        f"p50 {p50_ms:.1f} ms, p99 {p99_ms:.1f} ms, max {max_ms:.0f} ms ({latency_split(since)})"
    )
    return p50_ms, p99_ms, max_ms, note


def run(ctx: Context) -> Section:
    section = Section("End to end")
    seconds = 15 if ctx.quick else 30
    reset_tables()
    token = ctx.token
    runs: list[tuple[float, float, float]] = []
    notes = []
    with processes(ctx.world) as group:
        port = group.gunicorn(workers=ctx.web_workers)
        group.worker("worker", concurrency=2)
        group.beat()
        api = Api(port, token)

        def register(index: int) -> bool:
            body = {"first_name": "Ada", "last_name": "Lovelace", "email": f"e2e-{uuid.uuid4().hex}@bench.example"}
            return api.command("register-customer", body).ok

        Paced(rate=20, seconds=3, send=register).run()  # warm up every process
        for _ in range(ctx.repeat):
            p50_ms, p99_ms, max_ms, note = measure(api_rate=RATE, seconds=seconds, send=register)
            runs.append((p50_ms, p99_ms, max_ms))
            notes.append(note)
        light = measure(api_rate=LIGHT_RATE, seconds=seconds, send=register)
        notes.append(f"and once at {LIGHT_RATE:.0f} cmd/s, a rate one worker keeps up with: {light[3]}")
    p50, p99 = median([r[0] for r in runs]), median([r[1] for r in runs])
    section.figures.append(
        Figure(
            "end to end: commit -> read model, p50 (100 cmd/s)",
            p50,
            "ms",
            target="< 30 ms",
            met=at_most(30)(p50),
            runs=[r[0] for r in runs],
        )
    )
    section.figures.append(
        Figure(
            "end to end: commit -> read model, p99 (100 cmd/s)",
            p99,
            "ms",
            target="< 150 ms",
            met=at_most(150)(p99),
            runs=[r[1] for r in runs],
        )
    )
    section.figures.append(Figure(f"  same at {LIGHT_RATE:.0f} cmd/s (once), p50", light[0], "ms"))
    section.figures.append(Figure(f"  same at {LIGHT_RATE:.0f} cmd/s (once), p99", light[1], "ms"))
    section.notes.append(
        f"gunicorn {ctx.web_workers} workers, celery worker --concurrency=2, beat; runs: " + "; ".join(notes) + "."
    )
    reset_tables()
    return section
