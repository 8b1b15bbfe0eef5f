"""Synthetic event logs for the relay, projection and replay figures, written by PostgreSQL itself.

The events are customer events with the real envelope shape: CustomerRegistered as version 1 of each aggregate
and CustomerEmailChanged after it, inserted version by version so created_at follows version order (as the
advisory lock makes it in production). Payloads match docs/events.md, so the projections apply them as they are.
"""

from django.db import connection

from bench.environment import vacuum_analyze
from outbox_app.models import OutboxEvent

TABLE = OutboxEvent._meta.db_table

_INSERT = f"""
INSERT INTO {TABLE} (event_id, event_type, schema_version, aggregate_type, aggregate_id, aggregate_version,
                     payload, metadata, created_at, published_at, dead_at, attempts, next_attempt_at, last_error)
SELECT gen_random_uuid(),
       CASE WHEN v = 1 THEN 'CustomerRegistered' ELSE 'CustomerEmailChanged' END,
       1, 'Customer', c.id::text, v,
       CASE WHEN v = 1
            THEN jsonb_build_object('customer_id', c.id::text, 'first_name', 'Ada', 'last_name', 'Lovelace',
                                    'email', 'c' || a || '-v1@bench.example')
            ELSE jsonb_build_object('customer_id', c.id::text, 'email', 'c' || a || '-v' || v || '@bench.example',
                                    'previous_email', 'c' || a || '-v' || (v - 1) || '@bench.example')
       END,
       jsonb_build_object('correlation_id', 'bench-' || a, 'causation_id', gen_random_uuid()::text,
                          'client_id', 'bench', 'command', 'Bench'),
       clock_timestamp(), CASE WHEN %(published)s THEN clock_timestamp() END, NULL, %(attempts)s, NULL, ''
FROM generate_series(1, %(versions)s) AS v
CROSS JOIN LATERAL generate_series(1, LEAST(%(aggregates)s, %(events)s - (v - 1) * %(aggregates)s)) AS a
CROSS JOIN LATERAL (SELECT md5('bench-customer-' || a)::uuid AS id) AS c
ORDER BY v, a
"""


def insert_customer_events(events: int, *, versions: int = 2, published: bool = False) -> None:
    """`events` events over ceil(events / versions) customers, each with up to `versions` versions."""
    aggregates = -(-events // versions)
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT,
            {
                "versions": versions,
                "aggregates": aggregates,
                "events": events,
                "published": published,
                "attempts": 1 if published else 0,
            },
        )
    vacuum_analyze(TABLE)
