"""Where PostgreSQL's time goes, statement by statement, from pg_stat_statements.

The orders module reports, for its bursts, the statements that cost PostgreSQL the most (execution and planning,
per order accepted) where the server has pg_stat_statements loaded. This machine's server does not, so

    python -m bench.statements              # make bench-statements (~3 min)

runs the orders module (a quick run; arguments after it go to bench.run) on a PostgreSQL cluster of its own that
loads the extension, configured as a production server is by default (autovacuum on, durable commits), and drops
it afterwards. Its report goes to var/bench/statements.md; the figures of `make bench` stay on the machine's server.
"""

import os
import sys
from dataclasses import dataclass

EXTENSION = "pg_stat_statements"
SHOWN = 12


@dataclass(frozen=True)
class Statement:
    query: str
    calls: int
    rows: int
    milliseconds: float
    planning_milliseconds: float
    blocks: int


def available() -> bool:
    """Whether this database can count its statements (the server preloads the extension; it is created here)."""
    from django.db import DatabaseError, connection, transaction

    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"CREATE EXTENSION IF NOT EXISTS {EXTENSION}")
            cursor.execute(f"SELECT 1 FROM {EXTENSION} LIMIT 1")
        return True
    except DatabaseError:
        return False


def reset() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {EXTENSION}_reset()")


def counted() -> list[Statement]:
    """This database's statements since the last reset(), the costliest first."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT query, calls, rows, total_exec_time + total_plan_time, total_plan_time,"
            " shared_blks_hit + shared_blks_read"
            f" FROM {EXTENSION} WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " ORDER BY total_exec_time + total_plan_time DESC"
        )
        return [Statement(*row) for row in cursor.fetchall()]


def report(statements: list[Statement], orders: int) -> str:
    """A note: the totals per order, then the costliest statements."""
    if not statements or not orders:
        return "pg_stat_statements counted nothing."
    total = sum(s.milliseconds for s in statements)
    planning = sum(s.planning_milliseconds for s in statements)
    calls = sum(s.calls for s in statements)
    lines = [f"{'ms/order':>9} {'plan %':>6} {'calls/order':>11} {'rows/call':>9} {'blocks/call':>11}  statement"]
    for s in statements[:SHOWN]:
        plan_share = 100 * s.planning_milliseconds / s.milliseconds if s.milliseconds else 0.0
        lines.append(
            f"{s.milliseconds / orders:9.3f} {plan_share:6.0f} {s.calls / orders:11.2f}"
            f" {s.rows / max(s.calls, 1):9.1f} {s.blocks / max(s.calls, 1):11.0f}  {' '.join(s.query.split())[:110]}"
        )
    return (
        f"Where PostgreSQL's time went in the bursts (pg_stat_statements, this database, per order accepted; wall "
        f"time inside the server, lock waits included): {calls / orders:.0f} statements and {total / orders:.2f} ms "
        f"per order, {100 * planning / total:.0f}% of it planning. The costliest {min(SHOWN, len(statements))}:\n\n"
        "```\n" + "\n".join(lines) + "\n```"
    )


def main(argv: list[str]) -> int:
    from bench.private_services import PrivatePostgres

    settings = ["-o", f"shared_preload_libraries={EXTENSION}", "-o", f"{EXTENSION}.track_planning=on"]
    with PrivatePostgres.running(settings=settings, durable=True) as cluster:
        os.environ["BENCH_PG_SERVER"] = cluster.url("").rstrip("/")
        from bench import environment, run  # after BENCH_PG_SERVER is set: the bench's world reads it

        output = environment.ROOT / "var/bench/statements.md"
        return run.main(["--quick", "--only", "orders", "--output", str(output), *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
