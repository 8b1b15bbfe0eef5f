"""The relay draining a backlog: events claimed, published to the broker and marked, per second.

The backlog is customer events (bench/backlog.py), two versions per aggregate. The relay is outbox_app's own
relay_until_drained() in this process, publishing to the bench's Redis broker (nobody consumes: the broker DB is
flushed after each run). The baseline drains the same backlog with bare SQL in the same batches: claim 500 rows
(every column, FOR UPDATE SKIP LOCKED, in created_at order) and mark them published, one transaction each.
"""

import cProfile
import pstats
import time

from django.db import connection, transaction

from bench.backlog import TABLE, insert_customer_events
from bench.context import Context
from bench.environment import purge_broker, reset_tables
from bench.results import Section, at_least, listed, median_figure
from outbox_app.models import OutboxEvent
from outbox_app.relay import relay_until_drained

BATCH = 500


def drain_with_relay() -> int:
    report = relay_until_drained(batch_size=BATCH, max_batches=1_000_000)
    return report.published


def drain_with_sql() -> int:
    claim = (
        f"SELECT * FROM {TABLE} WHERE published_at IS NULL AND dead_at IS NULL "
        "AND (next_attempt_at IS NULL OR next_attempt_at <= statement_timestamp()) "
        f"ORDER BY created_at LIMIT {BATCH} FOR UPDATE SKIP LOCKED"
    )
    mark = f"UPDATE {TABLE} SET published_at = now(), attempts = attempts + 1 WHERE event_id = ANY(%s)"
    total = 0
    for _ in range(1_000_000):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(claim)
            ids = [row[0] for row in cursor.fetchall()]
            if ids:
                cursor.execute(mark, [ids])
        total += len(ids)
        if len(ids) < BATCH:
            return total
    return total


def timed_drain(events: int, drain: object) -> float:
    reset_tables()
    insert_customer_events(events)
    started = time.perf_counter()
    published = drain()  # type: ignore[operator]
    seconds = time.perf_counter() - started
    if published != events or OutboxEvent.objects.pending().exists():
        raise RuntimeError(f"drained {published} of {events} events")
    purge_broker()
    return events / seconds


STAGES = [
    ("relay_once (one batch)", "outbox_app/relay.py", "relay_once"),
    ("  claim (SELECT ... FOR UPDATE SKIP LOCKED)", "outbox_app/relay.py", "_claim"),
    ("    envelopes (built from the claimed rows)", "outbox_app/models.py", "envelope"),
    ("  predecessor lookups", "outbox_app/relay.py", "_unpublished_predecessors"),
    ("  release in order", "outbox_app/relay.py", "release_in_order"),
    ("  publish (broker)", "outbox_app/relay.py", "publish_in_order"),
    ("    kombu/celery apply_async", "celery/app/task.py", "apply_async"),
    ("  mark published (UPDATE)", "outbox_app/relay.py", "_mark_published"),
    ("  metrics", "outbox_app/metrics.py", "record_relay"),
    ("  commit", "django/db/transaction.py", "__exit__"),
]


def where_the_time_goes(events: int) -> str:
    reset_tables()
    insert_customer_events(events)
    profiler = cProfile.Profile()
    profiler.enable()
    drain_with_relay()
    profiler.disable()
    purge_broker()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    batches = events / BATCH
    lines = []
    for label, suffix, function in STAGES:
        cumulative = sum(
            entry[3] for (filename, _, name), entry in stats.items() if filename.endswith(suffix) and name == function
        )
        lines.append(f"{label:<46} {cumulative / batches * 1000:7.1f} ms per batch of {BATCH}")
    return "\n".join(lines)


def run(ctx: Context) -> Section:
    section = Section("Outbox relay")
    events = 20_000 if ctx.quick else 100_000
    rates: dict[str, list[float]] = {"relay": [], "sql": []}
    for _ in range(ctx.repeat):
        rates["sql"].append(timed_drain(events, drain_with_sql))
        rates["relay"].append(timed_drain(events, drain_with_relay))
    section.figures.append(
        median_figure(
            f"relay: events claimed, published, marked /s (backlog {events:,})",
            rates["relay"],
            "ev/s",
            baseline="bare SQL claim 500 + mark, same table",
            baseline_runs=rates["sql"],
            target=">= 10,000 ev/s",
            meets=at_least(10_000),
        )
    )
    section.notes.append(
        f"One relay process, batches of {BATCH}, {ctx.repeat} runs on a fresh backlog each; runs "
        f"{listed(rates['relay'])} ev/s (relay), {listed(rates['sql'])} ev/s (bare SQL)."
    )
    section.notes.append(
        "Where a batch's time goes (cProfile of one drain of 10,000 events; the profiler inflates each line):"
        "\n\n```\n" + where_the_time_goes(10_000) + "\n```"
    )
    reset_tables()
    return section
