"""The command path in-process: the mediator pipeline against a plain ORM write, and against pgbench.

A command here is RegisterCustomer through the full pipeline (logging, tracing, metrics, authorization, the
two idempotency tiers, the handler, the unit of work with its advisory lock and outbox row, the durable record
written last, the commit and the relay nudge, which a thread of its own sends): four round trips to PostgreSQL
(BEGIN; lock + read; rows + outbox rows + record; COMMIT) and one to Redis. Its baselines, measured in the
same run:
  - the Django ORM doing the same work as the command in one transaction, as a developer would write it without
    the pipeline: the email's advisory lock, the uniqueness read, then the three rows (customer, outbox event,
    idempotency record), one statement each (seven round trips): the ratio measures the pipeline, not its batching;
  - a plain Django ORM transaction writing the same three rows only (no lock, no read);
  - the same with only the aggregate row (for scale);
  - pgbench, one client, sending exactly the statements the command sends (bench/sql/command.pgbench), and
    only its three INSERTs (bench/sql/rows.pgbench).
"""

import cProfile
import json
import pstats
import re
import subprocess
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from django.db import connection, transaction
from django.utils import timezone
from uuid_utils.compat import uuid7

from bench.bare import bare_mediator
from bench.context import Context
from bench.environment import ROOT, reset_tables
from bench.results import Figure, Section, at_least, at_most, median
from commands_app.bootstrap import build_mediator
from commands_app.commands import RegisterCustomer
from commands_app.mediator import CommandContext
from commands_app.models import CustomerRecord, IdempotencyRecord
from commands_app.unit_of_work import advisory_lock_key
from outbox_app.models import OutboxEvent

SQL = ROOT / "bench" / "sql"


def _emails() -> Callable[[], str]:
    prefix = uuid.uuid4().hex[:8]
    counter = iter(range(10**9))
    return lambda: f"{prefix}-{next(counter)}@bench.example"


def _timed(n: int, one: Callable[[], object]) -> float:
    """Seconds per call over n calls."""
    started = time.perf_counter()
    for _ in range(n):
        one()
    return (time.perf_counter() - started) / n


def pipeline_command(context: CommandContext, email: Callable[[], str], bare: bool = False) -> Callable[[], object]:
    mediator = bare_mediator() if bare else build_mediator()

    def one() -> object:
        command = RegisterCustomer(idempotency_key=uuid.uuid4(), first_name="Ada", last_name="Lovelace", email=email())
        outcome = mediator.send(command, context)
        assert outcome.status_code == 201, outcome
        return outcome

    return one


def orm_write(
    context: CommandContext, email: Callable[[], str], *, same_rows: bool, same_work: bool = False
) -> Callable[[], object]:
    """A plain ORM transaction: the customer row; with `same_rows` its outbox event and idempotency record too; with
    `same_work` also the command's lock and uniqueness read before them."""

    def one() -> object:
        customer_id = uuid7()
        address = email()
        with transaction.atomic():
            if same_work:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [advisory_lock_key("customer-email", address)])
                if CustomerRecord.objects.filter(email=address).exists():
                    raise RuntimeError(f"{address} is taken")
            CustomerRecord.objects.create(
                customer_id=customer_id, first_name="Ada", last_name="Lovelace", email=address, version=1
            )
            if same_rows:
                OutboxEvent.objects.create(
                    event_id=uuid7(),
                    event_type="CustomerRegistered",
                    aggregate_type="Customer",
                    aggregate_id=str(customer_id),
                    aggregate_version=1,
                    payload={
                        "customer_id": str(customer_id),
                        "first_name": "Ada",
                        "last_name": "Lovelace",
                        "email": address,
                    },
                    metadata={"correlation_id": context.correlation_id, "client_id": context.client_id},
                )
                IdempotencyRecord.objects.create(
                    client_id=context.client_id,
                    key=uuid.uuid4(),
                    command_type="RegisterCustomer",
                    request_hash="0" * 64,
                    status_code=201,
                    response_body=json.dumps({"customer_id": str(customer_id), "version": 1}),
                    expires_at=timezone.now() + timedelta(days=1),
                )
        return customer_id

    return one


def pgbench(ctx: Context, script: Path, seconds: int) -> float:
    """Transactions per second of one pgbench client running the script."""
    result = subprocess.run(
        [
            "pgbench",
            "--no-vacuum",
            "--protocol=simple",
            "--client=1",
            "--jobs=1",
            f"--time={seconds}",
            f"--file={script}",
            ctx.world.database_url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    found = re.search(r"tps = ([\d.]+) \(without initial connection time\)", result.stdout)
    if result.returncode != 0 or not found:
        raise RuntimeError(f"pgbench failed: {result.stdout[-1000:]}{result.stderr[-1000:]}")
    return float(found.group(1))


# (label, file suffix, function): cumulative time of each, per command, says where a command's time goes.
STAGES = [
    ("mediator.send (the whole command)", "commands_app/mediator.py", "send"),
    ("  logging middleware, its own log line", "structlog/_base.py", "_proxy_to_logger"),
    ("  idempotency: Redis claim (Lua)", "commands_app/middleware/idempotency.py", "_claim_fast"),
    ("  idempotency: request fingerprint", "commands_app/middleware/idempotency.py", "fingerprint"),
    ("  idempotency: writes + record (one query)", "sqlkit/transaction.py", "flush"),
    ("  result mapper: handler + unit of work", "commands_app/middleware/result_mapper.py", "_run"),
    ("    unit of work: the events' outbox rows", "commands_app/unit_of_work.py", "stage_events"),
    ("    consistency token (signing)", "api_common/consistency.py", "encode_token"),
    ("  transaction commit + on_commit", "django/db/transaction.py", "__exit__"),
    ("    relay nudge (on_commit: asks its thread)", "outbox_app/outbox.py", "nudge_relay"),
    ("  idempotency: Redis complete (Lua, no reply)", "commands_app/middleware/idempotency_store.py", "complete"),
    ("PostgreSQL statements (psycopg execute)", "psycopg/cursor.py", "execute"),
    ("Redis round trips (redis-py execute_command)", "redis/client.py", "execute_command"),
]


def profile_summary(one: Callable[[], object], n: int) -> str:
    """Where the time of n pipeline commands goes: cumulative milliseconds per command of each stage."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(n):
        one()
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    lines = []
    for label, suffix, function in STAGES:
        matches = [
            (calls, cumulative)
            for (filename, _, name), (_, calls, _, cumulative, _) in stats.items()
            if filename.endswith(suffix) and name == function
        ]
        calls = sum(c for c, _ in matches)
        cumulative = sum(t for _, t in matches)
        lines.append(f"{label:<48} {cumulative / n * 1000:6.3f} ms  ({calls / n:.1f} calls)")
    return "\n".join(lines)


def run(ctx: Context) -> Section:
    section = Section("Command path, in-process")
    n = 300 if ctx.quick else 2000
    seconds = 3 if ctx.quick else 8
    context = CommandContext(client_id=str(uuid.uuid4()), scopes=frozenset({"write"}), correlation_id="bench")
    email = _emails()
    full = pipeline_command(context, email)
    bare = pipeline_command(context, email, bare=True)
    same_work = orm_write(context, email, same_rows=True, same_work=True)
    same_rows = orm_write(context, email, same_rows=True)
    aggregate_only = orm_write(context, email, same_rows=False)
    reset_tables()
    for warm in (full, bare, same_work, same_rows, aggregate_only):
        _timed(100, warm)

    timings: dict[str, list[float]] = {"full": [], "bare": [], "same_work": [], "same_rows": [], "aggregate": []}
    tps: dict[str, list[float]] = {"command": [], "rows": []}
    for _ in range(ctx.repeat):
        reset_tables()
        timings["same_work"].append(_timed(n, same_work))
        timings["same_rows"].append(_timed(n, same_rows))
        timings["aggregate"].append(_timed(n, aggregate_only))
        timings["full"].append(_timed(n, full))
        timings["bare"].append(_timed(n, bare))
        tps["command"].append(pgbench(ctx, SQL / "command.pgbench", seconds))
        tps["rows"].append(pgbench(ctx, SQL / "rows.pgbench", seconds))

    ms = {name: [t * 1000 for t in values] for name, values in timings.items()}
    per_command, orm = median(ms["full"]), median(ms["same_rows"])
    section.figures.append(
        Figure(
            "command path, time per command (RegisterCustomer, full pipeline)",
            per_command,
            "ms",
            baseline="plain ORM transaction writing the same 3 rows",
            baseline_value=orm,
            target="<= 1.5x baseline",
            met=at_most(1.5)(per_command / orm),
            runs=ms["full"],
        )
    )
    section.figures.append(
        Figure(
            "  same, vs the ORM doing the same work",
            per_command,
            "ms",
            baseline="ORM transaction: advisory lock, uniqueness read, the same 3 rows",
            baseline_value=median(ms["same_work"]),
            runs=ms["same_work"],
        )
    )
    section.figures.append(
        Figure(
            "  same, vs the aggregate row alone",
            per_command,
            "ms",
            baseline="plain ORM transaction writing the customer row only",
            baseline_value=median(ms["aggregate"]),
            runs=ms["aggregate"],
        )
    )
    section.figures.append(
        Figure(
            "  same, bare pipeline (result mapper only)",
            median(ms["bare"]),
            "ms",
            baseline="plain ORM transaction writing the same 3 rows",
            baseline_value=orm,
            runs=ms["bare"],
        )
    )
    rate = 1000 / per_command
    pg_rate = median(tps["command"])
    section.figures.append(
        Figure(
            "command path, commands per second (1 process)",
            rate,
            "cmd/s",
            baseline="pgbench, 1 client, the command's exact statements",
            baseline_value=pg_rate,
            target=">= 0.3x baseline",
            met=at_least(0.3)(rate / pg_rate),
            runs=[1000 / t for t in ms["full"]],
        )
    )
    section.figures.append(
        Figure(
            "  same, vs pgbench of the 3 INSERTs only",
            rate,
            "cmd/s",
            baseline="pgbench, 1 client, BEGIN + 3 INSERTs + COMMIT",
            baseline_value=median(tps["rows"]),
            runs=tps["rows"],
        )
    )
    section.notes.append(
        f"{n} commands per run, {ctx.repeat} runs; pgbench {seconds}s per run. Medians of runs: "
        + ", ".join(f"{name} {median(values):.3f} ms" for name, values in ms.items())
        + f"; pgbench same statements {median(tps['command']):.0f} tps, 3 INSERTs {median(tps['rows']):.0f} tps."
    )
    reset_tables()
    section.notes.append(
        "Where a command's time goes (cProfile of 300 commands through the full pipeline; the profiler "
        "inflates every figure, compare them with each other):\n\n```\n" + profile_summary(full, 300) + "\n```"
    )
    reset_tables()
    return section
