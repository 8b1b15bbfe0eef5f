"""sqlkit prepares each statement on a connection the first time it sends it there, in the same query, and runs it
by name afterwards: PostgreSQL parses and analyzes it once per connection, and plans it for its values on every
run. The answers are those of the statement sent as text; a query that failed leaves no statement half-known; a
connection that lost its prepared statements (DEALLOCATE, a migration that changed what a statement returns)
fails that one query and prepares them again at the next; SQLKIT_PREPARED_STATEMENTS = False sends text."""

import datetime
import json
import uuid
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.db.utils import IntegrityError, OperationalError
from django.test.utils import CaptureQueriesContext, override_settings
from psycopg.types.json import Jsonb

from sqlkit import Statement
from sqlkit.dialects import PostgreSQL, PreparedStatementsLost

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's prepared statements"),
    pytest.mark.django_db(transaction=True),
]

INSERT = "INSERT INTO sqlkit_probe (id, amount, at, doc, note, n) VALUES (%s, %s, %s, %s, %s, %s)"
READ = "SELECT id, amount, at, doc, note, n FROM sqlkit_probe WHERE id = %s"


@pytest.fixture
def probe_table():
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE sqlkit_probe (id uuid PRIMARY KEY, amount numeric(12, 2), at timestamptz, doc jsonb,"
            " note text, n bigint)"
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS sqlkit_probe")


def sent(dialect: PostgreSQL, statements: list[Statement]) -> tuple[list, list[str]]:
    """Each statement's rows, and the queries that went to the server."""
    with CaptureQueriesContext(connection) as queries, connection.cursor() as cursor:
        outcomes = dialect.send(cursor, statements)
    return [[decoded(row) for row in outcome.rows] for outcome in outcomes], [
        q["sql"] for q in queries.captured_queries
    ]


def decoded(row: tuple) -> tuple:
    """A probe row's jsonb column (text, as Django's connection reads it) as its value."""
    if len(row) >= 6 and isinstance(row[3], str):
        return (*row[:3], json.loads(row[3]), *row[4:])
    return row


def a_row(note: str = 'it\'s 100% \\ "quoted"\nnon-ASCII: é') -> list:
    return [
        uuid.uuid4(),
        Decimal("12.30"),
        datetime.datetime(2026, 12, 6, 7, 30, tzinfo=datetime.UTC),
        Jsonb({"lines": [1, 2], "note": "50% off; 'quoted'"}),
        note,
        -(2**40),
    ]


def as_read(row: list) -> tuple:
    return (row[0], row[1], row[2], row[3].obj, row[4], row[5])


def test_a_statement_is_prepared_in_the_query_that_first_sends_it_and_run_by_name_after(probe_table):
    # given
    dialect = PostgreSQL("default")
    first, second = a_row(), a_row(note="")

    # when
    first_rows, first_queries = sent(dialect, [Statement(INSERT, first), Statement(READ, [first[0]])])
    second_rows, second_queries = sent(dialect, [Statement(INSERT, second), Statement(READ, [second[0]])])

    # then: one round trip each; the first prepares both statements, the second only runs them
    assert len(first_queries) == 1 and first_queries[0].count("PREPARE sqlkit_") == 2
    assert len(second_queries) == 1 and "PREPARE" not in second_queries[0]
    assert second_queries[0].count("EXECUTE sqlkit_") == 2
    assert first_rows == [[], [as_read(first)]] and second_rows == [[], [as_read(second)]]
    assert sorted(dialect.statements_prepared().values()) == sorted([INSERT, READ])
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements WHERE name LIKE 'sqlkit%%'")
        on_the_server = {name for (name,) in cursor.fetchall()}
    assert set(dialect.statements_prepared()) <= on_the_server


def test_the_answers_are_those_of_the_statements_sent_as_text(probe_table):
    # given: rows of every kind of value, a NULL among them; a LIKE with literal percent signs
    rows = [a_row(), a_row(note="50%"), [uuid.uuid4(), None, None, None, None, None]]
    statements = [Statement(INSERT, row) for row in rows]
    reads = [
        Statement(READ, [rows[0][0]]),
        Statement("SELECT count(*) FROM sqlkit_probe WHERE note LIKE '%%' || %s || '%%'", ["0%"]),
        Statement("SELECT id FROM sqlkit_probe WHERE amount IS NULL AND n IS NOT DISTINCT FROM %s", [None]),
    ]

    # when: the rows written as text, then read both ways
    with override_settings(SQLKIT_PREPARED_STATEMENTS=False):
        as_text = PostgreSQL("default")
    _, as_text_writes = sent(as_text, statements)
    as_text_rows, as_text_reads = sent(as_text, reads)
    prepared_rows, prepared_reads = sent(PostgreSQL("default"), reads)

    # then
    assert "PREPARE" not in as_text_writes[0] + as_text_reads[0] and "EXECUTE" not in as_text_reads[0]
    assert prepared_reads[0].count("EXECUTE") == 3
    assert as_text_rows == prepared_rows == [[as_read(rows[0])], [(2,)], [(rows[2][0],)]]


def test_a_prepared_statement_is_planned_for_its_values_on_every_run(probe_table):
    # given: the service's connection (config/settings.py asks for custom plans: a plan kept for any values, made
    # while a table was small, stays after the table grew)
    dialect = PostgreSQL("default")
    row = a_row()
    sent(dialect, [Statement(INSERT, row)])

    # when
    for _ in range(10):
        sent(dialect, [Statement(READ, [row[0]]), Statement(READ, [uuid.uuid4()])])

    # then
    (name,) = [name for name, sql in dialect.statements_prepared().items() if sql == READ]
    with connection.cursor() as cursor:
        cursor.execute("SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = %s", [name])
        generic, custom = cursor.fetchone()
    assert (generic, custom) == (0, 20)


def test_a_failed_query_leaves_no_statement_half_known(probe_table):
    # given: a row, and a query that prepares a read and then fails on the row's key
    dialect = PostgreSQL("default")
    row = a_row()
    sent(dialect, [Statement(INSERT, row)])
    failing = [Statement("SELECT count(*) FROM sqlkit_probe WHERE n = %s", [1]), Statement(INSERT, row)]

    # when
    with pytest.raises(IntegrityError), transaction.atomic():
        sent(dialect, failing)
    rows, queries = sent(dialect, [Statement("SELECT count(*) FROM sqlkit_probe WHERE n = %s", [row[5]])])

    # then: the read is prepared again, under a name of its own, and answers
    assert "PREPARE" in queries[0] and rows == [[(1,)]]
    assert list(dialect.statements_prepared().values()).count("SELECT count(*) FROM sqlkit_probe WHERE n = %s") == 1


def test_a_connection_that_lost_its_prepared_statements_prepares_them_again_after_one_failed_query(probe_table):
    # given
    dialect = PostgreSQL("default")
    row = a_row()
    sent(dialect, [Statement(INSERT, row), Statement(READ, [row[0]])])

    # when: the server forgets them (as DISCARD ALL, or a pooler's other server connection, would)
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    with pytest.raises(PreparedStatementsLost, match="does not exist"):
        sent(dialect, [Statement(READ, [row[0]])])
    rows, queries = sent(dialect, [Statement(READ, [row[0]])])

    # then: the failure was one a task retries and an API client is told to retry (503)
    assert issubclass(PreparedStatementsLost, OperationalError)
    assert "PREPARE" in queries[0] and rows == [[as_read(row)]]


def test_a_statement_whose_result_changed_shape_is_prepared_again_after_one_failed_query(probe_table):
    # given: a statement whose columns are the table's, prepared and run
    dialect = PostgreSQL("default")
    row = a_row()
    every_column = Statement("SELECT * FROM sqlkit_probe WHERE id = %s", [row[0]])
    sent(dialect, [Statement(INSERT, row), every_column])

    # when: a migration adds a column
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE sqlkit_probe ADD COLUMN added integer DEFAULT 7")
    with pytest.raises(PreparedStatementsLost, match="cached plan must not change result type"):
        sent(dialect, [every_column])
    rows, _ = sent(dialect, [every_column])

    # then
    assert rows == [[(*as_read(row), 7)]]


def test_statements_that_cannot_be_prepared_go_as_text_among_prepared_ones(probe_table):
    # given
    dialect = PostgreSQL("default")
    row = a_row()

    # when
    with transaction.atomic():
        rows, queries = sent(
            dialect,
            [Statement("SET LOCAL lock_timeout TO '5s'"), Statement(INSERT, row), Statement("SHOW lock_timeout")],
        )

    # then
    assert queries[0].startswith("SET LOCAL lock_timeout TO '5s'; PREPARE sqlkit_")
    assert queries[0].endswith("; SHOW lock_timeout") and rows == [[], [], [("5s",)]]


def test_past_its_limit_a_connection_sends_new_statements_as_text(probe_table):
    # given
    dialect = PostgreSQL("default")
    dialect.MAX_PREPARED = 2
    reads = [Statement(f"SELECT count(*) + {n} FROM sqlkit_probe WHERE n = %s", [n]) for n in range(3)]

    # when
    rows, queries = sent(dialect, reads)

    # then
    assert queries[0].count("PREPARE") == 2 and queries[0].endswith("SELECT count(*) + 2 FROM sqlkit_probe WHERE n = 2")
    assert rows == [[(0,)], [(1,)], [(2,)]] and len(dialect.statements_prepared()) == 2
