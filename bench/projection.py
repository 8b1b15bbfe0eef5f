"""One Celery worker applying events to projections, against bare batched upserts of the same rows.

The events are customer events (bench/backlog.py: CustomerRegistered, then CustomerEmailChanged), which the
`customers` and `orders` projections both follow: an event counts as applied once both have applied it (two
applies per event). They go to the worker the way the relay sends them: messages of 500 envelopes to
queries_app.project_events. The worker runs `--pool=solo` (one process). The baseline writes the rows those
events produce into read_customer with bare `INSERT ... ON CONFLICT (customer_id) DO UPDATE`, 500 rows per
statement, one transaction per batch.
"""

import cProfile
import pstats
import time
from typing import Any

from celery import current_app
from django.db import connection, transaction

from bench.backlog import insert_customer_events
from bench.context import Context
from bench.environment import reset_tables
from bench.processes import processes
from bench.results import Section, at_least, listed, median_figure
from outbox_app.models import OutboxEvent
from queries_app.models import ParkedEvent, ProjectionCheckpoint

BATCH = 500
TASK = "queries_app.project_events"


def envelopes_in_log_order() -> list[dict[str, Any]]:
    events = OutboxEvent.objects.order_by("created_at")
    return [event.to_envelope() for event in events.iterator(chunk_size=5000)]


def batches(envelopes: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [envelopes[i : i + BATCH] for i in range(0, len(envelopes), BATCH)]


# The projections that follow customer events: a message is done when both have applied it.
FOLLOWERS = ("customers", "orders")


def applied() -> int:
    """Events applied by every projection that follows them (the slowest one's count)."""
    counts = dict(
        ProjectionCheckpoint.objects.filter(projection__in=FOLLOWERS).values_list("projection", "events_applied")
    )
    return min(counts.get(name, 0) for name in FOLLOWERS)


def worker_rate(envelopes: list[dict[str, Any]], timeout: float) -> float:
    """Events per second, from the first message sent until the worker has applied them all."""
    reset_tables("queries_app")
    started = time.perf_counter()
    for batch in batches(envelopes):
        current_app.send_task(TASK, args=[batch])
    deadline = started + timeout
    while applied() < len(envelopes):
        if time.perf_counter() > deadline:
            raise RuntimeError(f"the worker applied {applied()} of {len(envelopes)} events in {timeout:.0f}s")
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    if ParkedEvent.objects.exists():
        raise RuntimeError("events were parked")
    return len(envelopes) / seconds


UPSERT = (
    "INSERT INTO read_customer (customer_id, first_name, last_name, email, orders_count, lifetime_value, "
    "last_order_at, version, updated_at) VALUES {values} ON CONFLICT (customer_id) DO UPDATE SET "
    "first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name, email = EXCLUDED.email, "
    "version = EXCLUDED.version, updated_at = EXCLUDED.updated_at"
)


def customer_row(envelope: dict[str, Any]) -> tuple[Any, ...]:
    payload = envelope["payload"]
    return (
        payload["customer_id"],
        payload.get("first_name", ""),
        payload.get("last_name", ""),
        payload["email"],
        0,
        0,
        None,
        envelope["aggregate_version"],
    )


def bare_upserts(envelopes: list[dict[str, Any]]) -> int:
    """The rows the events produce, upserted 500 per statement; a batch keeps the last version of each row."""
    for batch in batches(envelopes):
        rows = list({row[0]: row for row in map(customer_row, batch)}.values())
        values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, now())"] * len(rows))
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(UPSERT.format(values=values), [value for row in rows for value in row])
    return len(envelopes)


def bare_rate(envelopes: list[dict[str, Any]]) -> float:
    reset_tables("queries_app")
    started = time.perf_counter()
    bare_upserts(envelopes)
    return len(envelopes) / (time.perf_counter() - started)


STAGES = [
    ("project() per event", "queries_app/projection_engine/apply.py", "project"),
    ("  one batch per projection (one transaction)", "queries_app/projection_engine/apply.py", "_apply_batch"),
    ("    projection lock (advisory, shared)", "queries_app/projection_engine/apply.py", "hold_projection_lock"),
    ("    positions (create first, lock all)", "queries_app/projection_engine/apply.py", "_lock_positions"),
    ("    inbox insert (one statement)", "queries_app/projection_engine/apply.py", "_record_batch_in_inbox"),
    ("    rows loaded and locked in bulk", "queries_app/projection_engine/rows.py", "prefetch"),
    ("    handlers", "queries_app/projection_engine/projection.py", "apply"),
    ("    row upserts (flush)", "queries_app/projection_engine/rows.py", "flush"),
    ("    positions + checkpoint + parked? (one stmt)", "queries_app/projection_engine/apply.py", "_finish_batch"),
    ("    commit", "django/db/transaction.py", "__exit__"),
    ("  parked successors (only if any are parked)", "queries_app/projection_engine/apply.py", "_unpark_after"),
    ("PostgreSQL statements", "psycopg/cursor.py", "execute"),
]


def where_the_time_goes(envelopes: list[dict[str, Any]]) -> str:
    """cProfile of the worker's task body, project(), in this process."""
    from queries_app.projection_engine.apply import project

    reset_tables("queries_app")
    profiler = cProfile.Profile()
    profiler.enable()
    for batch in batches(envelopes):
        project(batch)  # type: ignore[arg-type]
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    lines = []
    for label, suffix, function in STAGES:
        matches = [
            (entry[1], entry[3])
            for (filename, _, name), entry in stats.items()
            if filename.endswith(suffix) and name == function
        ]
        calls, cumulative = sum(c for c, _ in matches), sum(t for _, t in matches)
        lines.append(f"{label:<48} {cumulative / len(envelopes) * 1000:6.3f} ms ({calls / len(envelopes):.1f} calls)")
    return "\n".join(lines)


def run(ctx: Context) -> Section:
    section = Section("Projection")
    events = 1_000 if ctx.quick else 3_000
    reset_tables()
    insert_customer_events(events, published=True)
    envelopes = envelopes_in_log_order()
    rates: dict[str, list[float]] = {"worker": [], "bare": []}
    with processes(ctx.world) as group:
        group.worker("projector", concurrency=1, pool="solo")
        for _ in range(ctx.repeat):
            rates["bare"].append(bare_rate(envelopes))
            rates["worker"].append(worker_rate(envelopes, timeout=max(60.0, events / 100)))
    section.figures.append(
        median_figure(
            f"projection: events applied /s, one worker ({events:,} events)",
            rates["worker"],
            "ev/s",
            baseline="bare INSERT ... ON CONFLICT, 500-row batches",
            baseline_runs=rates["bare"],
            target=">= 5,000 ev/s",
            meets=at_least(5000),
        )
    )
    section.notes.append(
        f"celery worker --pool=solo, messages of {BATCH} envelopes as the relay sends them; {ctx.repeat} runs: "
        f"{listed(rates['worker'])} ev/s (worker), {listed(rates['bare'])} ev/s (bare upserts)."
    )
    section.notes.append(
        "Where an event's time goes (cProfile of project(), the task's body, over 500 events in this process; "
        "the profiler inflates each line):\n\n```\n" + where_the_time_goes(envelopes[:500]) + "\n```"
    )
    reset_tables()
    return section
