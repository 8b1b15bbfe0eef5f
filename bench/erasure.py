"""What sealing personal data costs (docs/security.md, "Erasure"): RegisterCustomer per second with the customer's
data sealed and in clear, measured in one run, and the key table's rows and bytes per 1,000,000 customers.

    DATABASE_URL=postgres://.../cqrs_bench_e18 REDIS_URL=redis://127.0.0.1:6379/13 \
        python -m bench.erasure [--commands 2000] [--rounds 3] [--keys 100000]

Needs a migrated database of its own (it writes customers, events and 100,000 keys there, and deletes them after).
"In clear" is the same pipeline with CustomerRegistered's personal fields undeclared for the run (set here, never in
the service): the difference is the key row and the AES-GCM seal.
"""

import argparse
import os
import statistics
import time
import uuid

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from django.db import connection  # noqa: E402
from uuid_utils.compat import uuid7  # noqa: E402

from commands_app.bootstrap import build_mediator  # noqa: E402
from commands_app.commands import RegisterCustomer  # noqa: E402
from commands_app.events import CustomerRegistered  # noqa: E402
from commands_app.mediator import CommandContext  # noqa: E402
from commands_app.models import CustomerKey, CustomerRecord, IdempotencyRecord  # noqa: E402
from outbox_app.models import OutboxEvent  # noqa: E402
from outbox_app.sealing import new_key  # noqa: E402

PERSONAL = CustomerRegistered.personal_fields


def commands_per_second(n: int, *, sealed: bool) -> float:
    CustomerRegistered.personal_fields = PERSONAL if sealed else ()
    mediator = build_mediator()
    context = CommandContext(client_id="bench-erasure", scopes=frozenset({"write"}), correlation_id="bench")
    prefix = uuid.uuid4().hex[:8]
    started = time.perf_counter()
    for i in range(n):
        command = RegisterCustomer(
            idempotency_key=uuid.uuid4(), first_name="Ada", last_name="Lovelace", email=f"{prefix}-{i}@bench.example"
        )
        assert mediator.send(command, context).status_code == 201
    elapsed = time.perf_counter() - started
    CustomerRegistered.personal_fields = PERSONAL
    return n / elapsed


def payload_bytes(sealed: bool) -> float:
    rows = OutboxEvent.objects.filter(event_type="CustomerRegistered", payload__has_key="sealed")
    if not sealed:
        rows = OutboxEvent.objects.filter(event_type="CustomerRegistered").exclude(payload__has_key="sealed")
    with connection.cursor() as cursor:
        sql, params = rows.values("event_id").query.sql_with_params()
        cursor.execute(
            f"SELECT avg(pg_column_size(payload)) FROM outbox_app_outboxevent WHERE event_id IN ({sql})", params
        )
        return float(cursor.fetchone()[0] or 0)


def key_table_size(keys: int) -> tuple[int, int, int]:
    """Rows, table bytes (heap + TOAST) and index bytes of write_customer_key with `keys` live keys."""
    CustomerKey.objects.all().delete()
    batch = 10_000
    for start in range(0, keys, batch):
        CustomerKey.objects.bulk_create(
            [CustomerKey(customer_id=uuid7(), key=new_key()) for _ in range(min(batch, keys - start))]
        )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE write_customer_key")
        cursor.execute(
            "SELECT count(*), pg_table_size('write_customer_key'), pg_indexes_size('write_customer_key')"
            " FROM write_customer_key"
        )
        rows, table, indexes = cursor.fetchone()
    return int(rows), int(table), int(indexes)


def clean() -> None:
    for model in (CustomerKey, OutboxEvent, IdempotencyRecord, CustomerRecord):
        model.objects.all().delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commands", type=int, default=2000, help="RegisterCustomer per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of each (median reported)")
    parser.add_argument("--keys", type=int, default=100_000, help="keys written to measure the table")
    args = parser.parse_args()
    clean()
    commands_per_second(200, sealed=True)  # warm-up
    sealed, clear = [], []
    for _ in range(args.rounds):
        clear.append(commands_per_second(args.commands, sealed=False))
        sealed.append(commands_per_second(args.commands, sealed=True))
    print(f"RegisterCustomer, in clear: {statistics.median(clear):.0f}/s (runs {[round(r) for r in clear]})")
    print(f"RegisterCustomer, sealed:   {statistics.median(sealed):.0f}/s (runs {[round(r) for r in sealed]})")
    print(f"sealed / clear: {statistics.median(sealed) / statistics.median(clear):.2f}")
    print(f"CustomerRegistered payload, stored: clear {payload_bytes(False):.0f} B, sealed {payload_bytes(True):.0f} B")
    clean()
    rows, table, indexes = key_table_size(args.keys)
    scale = 1_000_000 / rows
    print(
        f"write_customer_key, {rows:,} keys: table {table / 2**20:.1f} MiB + index {indexes / 2**20:.1f} MiB"
        f" -> per 1,000,000 customers: {rows * scale:,.0f} rows, table {table * scale / 2**20:.0f} MiB,"
        f" index {indexes * scale / 2**20:.0f} MiB ({(table + indexes) / rows:.0f} B per customer)"
    )
    clean()


if __name__ == "__main__":
    main()
