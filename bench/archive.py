"""The archive: replay of 1,000,000 events with most of them archived, and what each table costs per 1,000,000 events.

    python -m bench.archive                        # 1,000,000 events, 90% archived (~10 min on 2 cores)
    python -m bench.archive --events 100000        # a quicker look
    python -m bench.archive --database cqrs_bench_x --cache-db 7 --broker amqp://guest:guest@127.0.0.1:5672/x

It creates (and drops, unless --keep) a database of its own and writes a mixed log with PostgreSQL itself: products
(ProductAdded), customers (CustomerRegistered) and orders placed, paid and confirmed (OrderPlaced,
PaymentAuthorized, OrderConfirmed), every event published with its log position, the read models empty. Then, in
one run:
  1. `replay_projections` (its own process) with the whole log in the outbox: the read models as the log gives them;
  2. archive the oldest `--archived` share of the log (`outbox_app.operations.archive_published`, batches of 5,000);
  3. `replay_projections` again, now reading mostly the archive, and `verify_projections`: the read models must be
     identical to step 1's (a checksum of every read table);
  4. archive everything (`prune_outbox --older-than 0`), fill the inbox as the live appliers would (one entry per
     projection following each event) and measure every table with pg_total_relation_size (VACUUM first).
Prints the figures and writes them as JSON (var/bench/archive.json); docs/outbox.md and docs/operations.md quote them.
"""

import argparse
import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench import environment
from bench.environment import ROOT, World

PRODUCTS = 1000
CUSTOMERS_PER_ORDER = 3  # one customer for every three orders
EVENTS_PER_ORDER = 3

READ_TABLES = (
    "read_customer",
    "read_order",
    "read_order_customer",
    "read_product",
    "read_best_seller",
)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.archive", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the log (default 1,000,000)")
    parser.add_argument("--archived", type=float, default=0.9, help="share of the log archived for the replay")
    parser.add_argument(
        "--cache-rows",
        type=int,
        default=500_000,
        help="replay_projections --cache-rows: rows held per projection (more than the customers, whom every order"
        " reads; default 500,000)",
    )
    parser.add_argument("--database", default="cqrs_bench_a18", help="the bench's own database (created, dropped)")
    parser.add_argument("--cache-db", type=int, default=12, help="Redis DB for the cache (flushed)")
    parser.add_argument("--broker", default="", help="broker URL (default: the Redis server, --cache-db)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--output", type=Path, default=ROOT / "var" / "bench" / "archive.json")
    return parser.parse_args(argv)


def sql(statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def write_log(events: int, old_share: float) -> dict[str, int]:
    """A mixed log of about `events` events, published, positions in creation order; the first `old_share` of the
    positions published 30 days ago, the rest now."""
    orders = max((events - PRODUCTS) * CUSTOMERS_PER_ORDER // (CUSTOMERS_PER_ORDER * EVENTS_PER_ORDER + 1), 1)
    customers = -(-orders // CUSTOMERS_PER_ORDER)
    sql("CREATE SEQUENCE IF NOT EXISTS bench_log_position")
    sql("ALTER SEQUENCE bench_log_position RESTART WITH 1")
    columns = (
        "event_id, event_type, schema_version, aggregate_type, aggregate_id, aggregate_version, payload, metadata,"
        " created_at, published_at, attempts, last_error, log_position"
    )
    common = "jsonb_build_object('correlation_id', 'bench-' || n, 'causation_id', gen_random_uuid()::text)"
    publish = "clock_timestamp(), clock_timestamp(), 1, '', nextval('bench_log_position')"
    sql(
        f"INSERT INTO outbox_app_outboxevent ({columns}) SELECT gen_random_uuid(), 'ProductAdded', 1, 'Product',"
        " 'SKU-' || n, 1, jsonb_build_object('sku', 'SKU-' || n, 'name', 'Item ' || n, 'description', '',"
        f" 'price', '9.90', 'stock', 1000000, 'available', 1000000), {common}, {publish}"
        " FROM generate_series(1, %s) AS n ORDER BY n",
        [PRODUCTS],
    )
    sql(
        f"INSERT INTO outbox_app_outboxevent ({columns}) SELECT gen_random_uuid(), 'CustomerRegistered', 1,"
        " 'Customer', md5('customer-' || n)::uuid::text, 1, jsonb_build_object('customer_id',"
        " md5('customer-' || n)::uuid::text, 'first_name', 'Ada', 'last_name', 'Lovelace', 'email',"
        f" 'c' || n || '@bench.example'), {common}, {publish} FROM generate_series(1, %s) AS n ORDER BY n",
        [customers],
    )
    # Each order: 1-3 units of one sku at 9.90, its customer one in every three orders.
    order = (
        "md5('order-' || n)::uuid::text AS order_id, md5('customer-' || (1 + n %% %(customers)s))::uuid::text"
        " AS customer_id, 'SKU-' || (1 + n %% %(products)s) AS sku, 1 + n %% 3 AS quantity,"
        " to_char((1 + n %% 3) * 9.90, 'FM999990.00') AS total"
    )
    kinds = {
        1: (
            "OrderPlaced",
            "jsonb_build_object('order_id', order_id, 'customer_id', customer_id, 'lines', jsonb_build_array("
            "jsonb_build_object('sku', sku, 'name', 'Item', 'quantity', quantity, 'unit_price', '9.90',"
            " 'line_total', total)), 'total', total, 'payment_reference', 'pm_bench')",
        ),
        2: (
            "PaymentAuthorized",
            "jsonb_build_object('order_id', order_id, 'authorization_id', 'auth_' || n, 'amount', total)",
        ),
        3: (
            "OrderConfirmed",
            "jsonb_build_object('order_id', order_id, 'customer_id', customer_id, 'total', total, 'lines',"
            " jsonb_build_array(jsonb_build_object('sku', sku, 'quantity', quantity)))",
        ),
    }
    for version, (event_type, payload) in kinds.items():
        sql(
            f"INSERT INTO outbox_app_outboxevent ({columns}) SELECT gen_random_uuid(), '{event_type}', 1, 'Order',"
            f" order_id, {version}, {payload}, {common}, {publish}"
            f" FROM (SELECT n, {order} FROM generate_series(1, %(orders)s) AS n) AS o ORDER BY n",
            {"orders": orders, "customers": customers, "products": PRODUCTS},
        )
    total = sql("SELECT count(*) FROM outbox_app_outboxevent")[0][0]
    old = int(total * old_share)
    sql(
        "UPDATE outbox_app_outboxevent SET published_at = published_at - interval '30 days',"
        " created_at = created_at - interval '30 days' WHERE log_position <= %s",
        [old],
    )
    sql("DROP SEQUENCE bench_log_position")
    return {"events": total, "products": PRODUCTS, "customers": customers, "orders": orders, "old": old}


def vacuum(*tables: str, full: bool = False) -> None:
    for table in tables:
        sql(f"VACUUM {'FULL ' if full else ''}ANALYZE {table}")


def checksum() -> dict[str, str]:
    """Every read table's rows, ordered, hashed (the bookkeeping timestamps left out)."""
    from django.apps import apps

    sums = {}
    for table in READ_TABLES:
        model = next(m for m in apps.get_app_config("queries_app").get_models() if m._meta.db_table == table)
        columns = ", ".join(str(f.column) for f in model._meta.concrete_fields if f.column != "updated_at")
        pk = model._meta.pk
        assert pk is not None
        sums[table] = sql(f"SELECT md5(string_agg(md5(row({columns})::text), '' ORDER BY {pk.column})) FROM {table}")[
            0
        ][0]
    return sums


def manage(world: World, *args: str) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=world.env(), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return time.perf_counter() - started


def fill_inbox() -> int:
    """One inbox entry per (projection, event) the live appliers would write: each event, once per projection that
    follows its aggregate type (queries_app.projections)."""
    from queries_app.projections import PROJECTIONS

    sql("TRUNCATE read_inbox")
    for projection in PROJECTIONS:
        sql(
            "INSERT INTO read_inbox (projection, event_id, processed_at) SELECT %s, event_id, now()"
            " FROM outbox_app_archivedevent WHERE aggregate_type = ANY(%s) ORDER BY log_position",
            [projection.name, list(projection.follows)],
        )
    return int(sql("SELECT count(*) FROM read_inbox")[0][0])


def sizes(events: int, *, compact: bool = True) -> list[dict[str, Any]]:
    """Each table's rows and bytes (heap, TOAST and indexes); `compact`: after VACUUM FULL, without the dead space
    the bench's own replays left (a table in service carries some, depending on its autovacuum)."""
    tables = [
        "outbox_app_outboxevent",
        "outbox_app_archivedevent",
        "read_inbox",
        "read_aggregate_position",
        *READ_TABLES,
    ]
    vacuum(*tables, full=compact)
    found = []
    for table in tables:
        rows, total, heap = sql(
            f"SELECT count(*), pg_total_relation_size('{table}'), pg_relation_size('{table}') FROM {table}"
        )[0]
        found.append(
            {
                "table": table,
                "rows": rows,
                "bytes": total,
                "heap_bytes": heap,
                "rows_per_million": round(rows * 1_000_000 / events),
                "mb_per_million": round(total * 1_000_000 / events / 1e6, 1),
            }
        )
    return found


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    world = environment.new_world(args.database, cache_db=args.cache_db, broker_db=args.cache_db)
    if args.broker:
        world = World(**{**world.__dict__, "broker": args.broker})
    environment.create_database(world)
    environment.setup_django(world)
    from outbox_app.operations import archive_published

    figures: dict[str, Any] = {
        "events_requested": args.events,
        "archived_share": args.archived,
        "cache_rows": args.cache_rows,
    }
    try:
        started = time.perf_counter()
        figures["log"] = write_log(args.events, args.archived)
        vacuum("outbox_app_outboxevent")
        figures["write_log_seconds"] = round(time.perf_counter() - started, 1)
        events = figures["log"]["events"]
        outbox_full = sizes(events)[0]
        figures["outbox_with_the_whole_log"] = outbox_full
        print(f"log: {events} events written in {figures['write_log_seconds']} s", flush=True)

        figures["replay_all_live_seconds"] = round(
            manage(world, "replay_projections", "--cache-rows", str(args.cache_rows)), 1
        )
        expected = checksum()
        print(f"replay, nothing archived: {figures['replay_all_live_seconds']} s", flush=True)

        started = time.perf_counter()
        moved = archive_published(older_than=timedelta(days=1), batch_size=5000)
        seconds = time.perf_counter() - started
        figures["archive"] = {"moved": moved, "seconds": round(seconds, 1), "events_per_second": round(moved / seconds)}
        vacuum("outbox_app_outboxevent", "outbox_app_archivedevent")
        print(f"archived {moved} events in {seconds:.1f} s ({moved / seconds:.0f}/s)", flush=True)

        figures["replay_mostly_archived_seconds"] = round(
            manage(world, "replay_projections", "--cache-rows", str(args.cache_rows)), 1
        )
        figures["identical_after_replay"] = checksum() == expected
        print(
            f"replay, {moved / events:.0%} archived: {figures['replay_mostly_archived_seconds']} s;"
            f" identical: {figures['identical_after_replay']}",
            flush=True,
        )
        figures["verify_mostly_archived_seconds"] = round(manage(world, "verify_projections"), 1)
        print(f"verify: {figures['verify_mostly_archived_seconds']} s (no drift)", flush=True)

        manage(world, "prune_outbox", "--older-than", "0")
        figures["inbox_entries"] = fill_inbox()
        figures["tables"] = sizes(events)
        for row in [outbox_full, *figures["tables"]]:
            print(
                f"{row['table']:28} {row['rows']:>9} rows {row['bytes'] / 1e6:>8.1f} MB"
                f"  per 1M events: {row['rows_per_million']:>9} rows {row['mb_per_million']:>7.1f} MB",
                flush=True,
            )
    finally:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(figures, indent=2, default=str) + "\n")
        if not args.keep:
            from django.db import connections

            connections.close_all()
            environment.drop_database(world)
    return 0 if figures.get("identical_after_replay") else 1


if __name__ == "__main__":
    raise SystemExit(main())
