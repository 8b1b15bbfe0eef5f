"""sqlkit's statements about a few keys are planned as a few index probes when the table's statistics lag its growth
(a burst of writes since the last ANALYZE, as between two autovacuum runs): the plan must not depend on how many
rows the planner believes the table or the keys hold."""

import json

import pytest
from django.db import connection

import sqlkit
from queries_app.models import AggregatePosition
from sqlkit.dialects import array_literal

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL plans")


def grown_after_its_statistics(rows: int) -> None:
    """Positions of four projections analyzed when the table held 100 of them, then `rows` more written: the
    planner's statistics lag the table's growth, as between two autovacuum runs of a growing table."""
    insert = (
        "INSERT INTO read_aggregate_position (projection, aggregate_type, aggregate_id, version)"
        " SELECT p, 'Order', 'order-' || n, 1 FROM generate_series(%s, %s) AS n,"
        " unnest(ARRAY['orders', 'customers', 'best_sellers', 'products']) AS p"
    )
    with connection.cursor() as cursor:
        cursor.execute(insert, [-25, -1])
        cursor.execute("ANALYZE read_aggregate_position")
        cursor.execute(insert, [1, rows // 4])


def explained(statement: sqlkit.Statement) -> dict:
    """The statement's plan as run (inside a transaction rolled back after, for a write)."""
    with connection.cursor() as cursor:
        cursor.execute("BEGIN")
        try:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {statement.sql}", statement.params)
            (plan,) = cursor.fetchone()[0]
        finally:
            cursor.execute("ROLLBACK")
    return plan["Plan"]


@pytest.mark.django_db(transaction=True)
def test_locking_three_positions_of_thousands_probes_the_index_three_times():
    # given
    grown_after_its_statistics(5000)
    keys = ["order-17", "order-600", "order-1200"]

    # when
    (statement,) = sqlkit.select(
        AggregatePosition,
        ["id", "aggregate_id", "version"],
        where={"projection": "orders", "aggregate_type": "Order"},
        where_in=("aggregate_id", keys),
        order_by=["aggregate_id"],
        lock=True,
    )
    plan = explained(statement)

    # then: the index probed for the 3 keys, not the projection's 1,250 positions read and joined
    assert plan["Actual Rows"] == 3
    assert plan["Shared Hit Blocks"] + plan.get("Shared Read Blocks", 0) < 30, json.dumps(plan)


@pytest.mark.django_db(transaction=True)
def test_updating_three_positions_of_thousands_probes_the_index_three_times():
    # given
    grown_after_its_statistics(5000)
    ids = list(AggregatePosition.objects.order_by("?").values_list("id", flat=True)[:3])

    # when
    (statement,) = sqlkit.update_many(AggregatePosition, "id", ["version"], [(pk, 2) for pk in ids])
    plan = explained(statement)

    # then: three index probes, not a scan of the table's 5,000 rows
    assert "Seq Scan" not in json.dumps(plan), json.dumps(plan)
    assert plan["Shared Hit Blocks"] + plan.get("Shared Read Blocks", 0) < 40, json.dumps(plan)


@pytest.mark.django_db
def test_an_array_constant_keeps_every_value_as_it_was():
    # given: values that an array's text must quote or escape
    values = ["plain", 'with "quotes"', "back\\slash", "comma, {braces}", "new\nline", "NULL", "", "café ☕", None]

    # when
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::text[]", [array_literal(values)])
        (read_back,) = cursor.fetchone()

    # then
    assert read_back == values
