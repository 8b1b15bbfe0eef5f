"""Replay: rebuild every read model from an event log of 1,000,000 events, against bare batched upserts.

The log is customer events (bench/backlog.py), which two projections follow (customers, and orders for its copy
of each customer). The replay is the operator's command, `manage.py replay_projections` (in a process of its
own; customers, orders and best sellers share one pass over the log), into fresh read models. The baseline
reads the same log with a server-side cursor and writes the rows it produces into both read tables with bare
`INSERT ... ON CONFLICT DO UPDATE`, 500 rows per statement. A run of 1,000,000 is done once per bench;
--repeat applies to smaller sizes (--quick, or --replay-events while iterating on the replay).
"""

import json
import subprocess
import time
from typing import Any

from django.db import connection, transaction

from bench.backlog import TABLE, insert_customer_events
from bench.context import Context
from bench.environment import ROOT, reset_tables
from bench.processes import BIN
from bench.results import Figure, Section, at_most, median

BATCH = 500
UPSERTS = {
    "read_customer": (
        "INSERT INTO read_customer (customer_id, first_name, last_name, email, orders_count, lifetime_value, "
        "last_order_at, version, updated_at) VALUES {values} ON CONFLICT (customer_id) DO UPDATE SET "
        "first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name, email = EXCLUDED.email, "
        "version = EXCLUDED.version, updated_at = EXCLUDED.updated_at",
        "(%s, %s, %s, %s, 0, 0, NULL, %s, now())",
    ),
    "read_order_customer": (
        "INSERT INTO read_order_customer (customer_id, first_name, last_name, email) VALUES {values} "
        "ON CONFLICT (customer_id) DO UPDATE SET first_name = EXCLUDED.first_name, "
        "last_name = EXCLUDED.last_name, email = EXCLUDED.email",
        "(%s, %s, %s, %s)",
    ),
}


def replay_command(ctx: Context, timeout: float) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(
        [str(BIN / "python"), "manage.py", "replay_projections"],
        cwd=ROOT,
        env=ctx.world.env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"replay_projections failed: {result.stdout[-1500:]}{result.stderr[-1500:]}")
    return seconds, result.stdout.strip()


def flush(rows: list[tuple[Any, ...]]) -> None:
    latest = list({row[0]: row for row in rows}.values())
    with transaction.atomic(), connection.cursor() as cursor:
        for table, (sql, marks) in UPSERTS.items():
            width = marks.count("%s")
            values = ", ".join([marks] * len(latest))
            params = [value for row in latest for value in (row if table == "read_customer" else row[:width])]
            cursor.execute(sql.format(values=values), params)


def bare_upserts() -> float:
    """Seconds to read the log in replay order and upsert the rows it produces, 500 per statement."""
    reset_tables("queries_app")
    started = time.perf_counter()
    with transaction.atomic(), connection.connection.cursor(name="bench_log") as log:
        log.itersize = 5000
        log.execute(
            f"SELECT aggregate_id, payload, aggregate_version FROM {TABLE} "
            "ORDER BY aggregate_type, aggregate_id, aggregate_version"
        )
        batch: list[tuple[Any, ...]] = []
        for aggregate_id, raw, version in log:
            payload = json.loads(raw) if isinstance(raw, str) else raw  # Django loads jsonb as text
            batch.append(
                (aggregate_id, payload.get("first_name", ""), payload.get("last_name", ""), payload["email"], version)
            )
            if len(batch) >= BATCH:
                flush(batch)
                batch = []
        if batch:
            flush(batch)
    return time.perf_counter() - started


def run(ctx: Context) -> Section:
    section = Section("Replay")
    events = ctx.replay_events or (50_000 if ctx.quick else 1_000_000)
    runs = ctx.repeat if events < 1_000_000 else 1
    reset_tables()
    started = time.perf_counter()
    insert_customer_events(events, published=True)
    inserted = time.perf_counter() - started
    replays: list[float] = []
    bare: list[float] = []
    outputs = []
    for _ in range(runs):
        bare.append(bare_upserts())
        reset_tables("queries_app")
        seconds, output = replay_command(ctx, timeout=1800)
        replays.append(seconds)
        outputs.append(output)
    section.figures.append(
        Figure(
            f"replay of {events:,} events into fresh read models (all projections)",
            median(replays),
            "s",
            baseline="bare INSERT ... ON CONFLICT of the same rows, 500 per statement",
            baseline_value=median(bare),
            target="< 180 s" if events >= 1_000_000 else "< 180 s at 1M",
            met=at_most(180)(median(replays)) if events >= 1_000_000 else None,
            runs=replays,
        )
    )
    section.notes.append(
        f"{events:,} events ({events // 2:,} customers, 2 versions each), written in {inserted:.0f}s; "
        f"{runs} run(s): replay {', '.join(f'{s:.1f}' for s in replays)} s "
        f"({events / median(replays):,.0f} ev/s), bare upserts {', '.join(f'{s:.1f}' for s in bare)} s. "
        "replay_projections said:\n\n```\n" + outputs[-1] + "\n```"
    )
    reset_tables()
    return section
