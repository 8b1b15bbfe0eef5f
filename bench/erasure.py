"""What sealing personal data costs (docs/security.md, "Erasure"): RegisterCustomer per second with the customer's
data sealed and in clear, measured in one run, and the key table's rows and bytes per 1,000,000 customers.

    DATABASE_URL=postgres://.../cqrs_bench_e18 REDIS_URL=redis://127.0.0.1:6379/13 \
        python -m bench.erasure [--commands 3000] [--slice 100] [--keys 100000]

Needs a migrated database of its own (it writes customers, events and 100,000 keys there, and deletes them after).
The two kinds alternate in slices of 100 commands, so a shared machine's drift falls on both alike. "In clear" is
the same pipeline with CustomerRegistered's personal fields undeclared for the run (set here, never in
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
from commands_app.mediator import CommandContext, Mediator  # noqa: E402
from commands_app.models import CustomerKey, CustomerRecord, IdempotencyRecord  # noqa: E402
from outbox_app.models import OutboxEvent  # noqa: E402
from outbox_app.sealing import new_key, open_payload, seal  # noqa: E402

PERSONAL = CustomerRegistered.personal_fields


def registrations(mediator: Mediator, n: int, *, sealed: bool) -> float:
    """Seconds for n RegisterCustomer through the mediator, the personal data sealed or (for the run) in clear."""
    CustomerRegistered.personal_fields = PERSONAL if sealed else ()
    context = CommandContext(client_id="bench-erasure", scopes=frozenset({"write"}), correlation_id="bench")
    prefix = uuid.uuid4().hex[:8]
    started = time.perf_counter()
    try:
        for i in range(n):
            command = RegisterCustomer(
                idempotency_key=uuid.uuid4(),
                first_name="Ada",
                last_name="Lovelace",
                email=f"{prefix}-{i}@bench.example",
            )
            assert mediator.send(command, context).status_code == 201
    finally:
        CustomerRegistered.personal_fields = PERSONAL
    return time.perf_counter() - started


def compare(total: int, slice_size: int) -> tuple[float, float, list[float]]:
    """Commands per second in clear and sealed, in slices that alternate (so the machine's drift, on a shared
    machine, falls on both alike), and the ratio sealed/clear of each pair of slices."""
    mediator = build_mediator()
    registrations(mediator, 200, sealed=True)  # warm-up
    clear = sealed = 0.0
    ratios = []
    for _ in range(total // slice_size):
        in_clear = registrations(mediator, slice_size, sealed=False)
        with_seal = registrations(mediator, slice_size, sealed=True)
        clear, sealed = clear + in_clear, sealed + with_seal
        ratios.append(in_clear / with_seal)
    return total / clear, total / sealed, ratios


def seal_and_open_microseconds(n: int = 20_000) -> tuple[float, float]:
    """One CustomerRegistered payload sealed, and opened, in this process (no database)."""
    payload = {"customer_id": str(uuid7()), "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org"}
    key, subject = new_key(), payload["customer_id"]
    started = time.perf_counter()
    for _ in range(n):
        sealed = seal(payload, PERSONAL, subject=subject, key=key)
    sealing = (time.perf_counter() - started) / n
    started = time.perf_counter()
    for _ in range(n):
        open_payload(sealed, {subject: key})
    return sealing * 1e6, (time.perf_counter() - started) / n * 1e6


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
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE write_customer_key")  # no dead rows of earlier runs in the figure
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
    parser.add_argument("--commands", type=int, default=3000, help="RegisterCustomer of each kind")
    parser.add_argument("--slice", type=int, default=100, help="commands per slice (the kinds alternate)")
    parser.add_argument("--keys", type=int, default=100_000, help="keys written to measure the table")
    args = parser.parse_args()
    clean()
    clear, sealed, ratios = compare(args.commands, args.slice)
    print(f"RegisterCustomer, {args.commands} each, alternating slices of {args.slice}:")
    print(f"  in clear {clear:.0f}/s, sealed {sealed:.0f}/s: sealed/clear {sealed / clear:.2f}")
    print(f"  per pair of slices: median {statistics.median(ratios):.2f}, range {min(ratios):.2f}-{max(ratios):.2f}")
    sealing, opening = seal_and_open_microseconds()
    print(f"one payload: sealed in {sealing:.1f} us, opened in {opening:.1f} us (AES-256-GCM, no database)")
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
