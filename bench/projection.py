"""One Celery worker applying events to projections, against bare batched upserts of the rows they touch.

The events are the business flow's mix (bench/backlog.py, insert_mixed_events: products, customers, orders of
several lines with their inventory, payment and confirmation or cancellation events). Every projection that
follows an event's aggregate type applies it (customers, orders, products, best sellers: about two applies per
event); an event counts as applied once all of them have. They go to the worker the way the relay sends them:
messages of 500 envelopes, in log order, to queries_app.project_events. The worker runs `--pool=solo` (one
process). The baseline (bench/bare_rows.py) upserts one row per aggregate each batch touches into its read table
with bare `INSERT ... ON CONFLICT DO UPDATE`, one transaction per batch.
"""

import cProfile
import pstats
import time
from typing import Any

from celery import current_app

from bench import bare_rows
from bench.backlog import insert_mixed_events
from bench.context import Context
from bench.environment import reset_tables
from bench.processes import processes
from bench.results import Section, at_least, listed, median_figure
from outbox_app.models import OutboxEvent
from queries_app.models import ParkedEvent, ProjectionCheckpoint
from queries_app.projections import PROJECTIONS

BATCH = 500
TASK = "queries_app.project_events"


def envelopes_in_log_order() -> list[dict[str, Any]]:
    events = OutboxEvent.objects.order_by("created_at")
    return [event.to_envelope() for event in events.iterator(chunk_size=5000)]


def batches(envelopes: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [envelopes[i : i + BATCH] for i in range(0, len(envelopes), BATCH)]


def expected_applies(envelopes: list[dict[str, Any]]) -> dict[str, int]:
    """How many of these events each projection follows (and so counts in its checkpoint once applied)."""
    return {
        projection.name: sum(1 for e in envelopes if e["aggregate_type"] in projection.follows)
        for projection in PROJECTIONS
    }


def behind(expected: dict[str, int]) -> dict[str, int]:
    """Events each projection has yet to apply (those with none left are not listed)."""
    counts = dict(ProjectionCheckpoint.objects.values_list("projection", "events_applied"))
    return {name: count - counts.get(name, 0) for name, count in expected.items() if counts.get(name, 0) < count}


def worker_rate(envelopes: list[dict[str, Any]], timeout: float) -> float:
    """Events per second, from the first message sent until every projection has applied every event it follows."""
    reset_tables("queries_app")
    expected = expected_applies(envelopes)
    started = time.perf_counter()
    for batch in batches(envelopes):
        current_app.send_task(TASK, args=[batch])
    deadline = started + timeout
    while left := behind(expected):
        if time.perf_counter() > deadline:
            raise RuntimeError(f"after {timeout:.0f}s the projections still had these events to apply: {left}")
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    if ParkedEvent.objects.exists():
        raise RuntimeError("events were parked")
    return len(envelopes) / seconds


def bare_upserts(envelopes: list[dict[str, Any]]) -> int:
    for batch in batches(envelopes):
        bare_rows.upsert_batch(map(bare_rows.from_envelope, batch))
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
    events = 2_000 if ctx.quick else 10_000
    reset_tables()
    log = insert_mixed_events(events)
    envelopes = envelopes_in_log_order()
    expected = expected_applies(envelopes)
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
            baseline="bare INSERT ... ON CONFLICT of the touched rows, 500-event batches",
            baseline_runs=rates["bare"],
            target=">= 5,000 ev/s",
            meets=at_least(5000),
        )
    )
    applies = ", ".join(f"{name} {count:,}" for name, count in expected.items())
    section.notes.append(
        f"The log: {log.summary()}; applies per projection: {applies}. "
        f"celery worker --pool=solo, messages of {BATCH} envelopes as the relay sends them; {ctx.repeat} runs: "
        f"{listed(rates['worker'])} ev/s (worker), {listed(rates['bare'])} ev/s (bare upserts)."
    )
    section.notes.append(
        "Where an event's time goes (cProfile of project(), the task's body, over the log's first 2,000 events, in "
        "this process; the profiler inflates each line):\n\n```\n" + where_the_time_goes(envelopes[:2000]) + "\n```"
    )
    reset_tables()
    return section
