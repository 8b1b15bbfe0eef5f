"""Replay: rebuild every read model from an event log of the business flow's mix, against bare batched upserts.

The log is the mix of bench/backlog.py (insert_mixed_events: products, customers, orders of several lines with
their inventory, payment and confirmation or cancellation events), 1,000,000 events by default. The replay is
the operator's command, `manage.py replay_projections` (in a process of its own; customers, orders and best
sellers share one pass over the log, products another), into fresh read models; `manage.py verify_projections`
then checks the rebuilt models against the log. The baseline reads the same log with a server-side cursor in
replay order and upserts one row per aggregate of each 500 events into its read table (bench/bare_rows.py).
A run of 1,000,000 is done once per bench; --repeat applies to smaller sizes (--quick, or --replay-events).
"""

import json
import subprocess
import time

from django.db import connection, transaction

from bench import bare_rows
from bench.backlog import TABLE, insert_mixed_events
from bench.context import Context
from bench.environment import ROOT, reset_tables
from bench.processes import BIN
from bench.results import Figure, Section, at_most, median

BATCH = 500


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


def bare_upserts() -> float:
    """Seconds to read the log in replay order and upsert the rows it touches, 500 events per batch."""
    reset_tables("queries_app")
    started = time.perf_counter()
    with transaction.atomic(), connection.connection.cursor(name="bench_log") as log:
        log.itersize = 5000
        log.execute(
            f"SELECT aggregate_type, aggregate_id, aggregate_version, event_type, payload FROM {TABLE} "
            "ORDER BY aggregate_type, aggregate_id, aggregate_version"
        )
        batch: list[bare_rows.Event] = []
        for kind, aggregate_id, version, event_type, raw in log:
            payload = json.loads(raw) if isinstance(raw, str) else raw  # Django loads jsonb as text
            batch.append((kind, aggregate_id, version, event_type, payload))
            if len(batch) >= BATCH:
                bare_rows.upsert_batch(batch)
                batch = []
        if batch:
            bare_rows.upsert_batch(batch)
    return time.perf_counter() - started


def verify(ctx: Context) -> str:
    """verify_projections on the rebuilt read models: the last line per projection ("N drifting row(s)")."""
    result = subprocess.run(
        [str(BIN / "python"), "manage.py", "verify_projections"],
        cwd=ROOT,
        env=ctx.world.env(),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if result.returncode != 0:
        raise RuntimeError(f"verify_projections failed: {result.stdout[-1500:]}{result.stderr[-1500:]}")
    return result.stdout.strip()


def run(ctx: Context) -> Section:
    section = Section("Replay")
    events = ctx.replay_events or (50_000 if ctx.quick else 1_000_000)
    runs = ctx.repeat if events < 1_000_000 else 1
    reset_tables()
    started = time.perf_counter()
    log = insert_mixed_events(events)
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
            baseline="bare INSERT ... ON CONFLICT of the touched rows, 500-event batches",
            baseline_value=median(bare),
            target="< 180 s" if events >= 1_000_000 else "< 180 s at 1M",
            met=at_most(180)(median(replays)) if events >= 1_000_000 else None,
            runs=replays,
        )
    )
    section.notes.append(
        f"The log: {log.summary()}; written in {inserted:.0f}s. "
        f"{runs} run(s): replay {', '.join(f'{s:.1f}' for s in replays)} s "
        f"({events / median(replays):,.0f} ev/s), bare upserts {', '.join(f'{s:.1f}' for s in bare)} s. "
        "replay_projections said:\n\n```\n" + outputs[-1] + "\n```\n\nverify_projections then said (the rebuilt "
        "read models against the log):\n\n```\n" + verify(ctx) + "\n```"
    )
    reset_tables()
    return section
