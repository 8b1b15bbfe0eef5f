"""What PostgreSQL and SQLite do differently, in one place: the dialect of a connection, chosen once.

PostgreSQL is the service's database; SQLite is the embedded default (`make run`). A dialect says how many rows
travel in one statement (PostgreSQL: as one JSON parameter, which psycopg quotes in one go where it would adapt
every element of an array in Python, and the keys a statement looks up as one array constant, whose text sqlkit
writes itself; SQLite: as parameters, within its limit on them), how several statements
go in one round trip, and which PostgreSQL-only abilities exist (advisory locks, COPY, snapshots, full-text
search, notifications). Callers choose their strategy by these abilities, never by the vendor's name.
"""

import functools
import itertools
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import date, time
from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID

import psycopg
from django.db import connections, models
from psycopg.adapt import Transformer

from sqlkit.statement import Outcome, Statement, sending

Fragment = tuple[str, list[Any]]


def _json_default(value: Any) -> Any:
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, date | time):  # datetime too
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} {value!r} cannot be sent as a JSON row value")


def to_json(values: Any) -> str:
    """Values as one JSON text (UUIDs and decimals as strings, dates and times in ISO form)."""
    return json.dumps(values, default=_json_default, separators=(",", ":"), ensure_ascii=False)


def array_literal(values: Iterable[Any]) -> str:
    """The values as the text of a PostgreSQL array (cast to the column's array type): each one quoted, with its
    backslashes and double quotes escaped; None is NULL. UUIDs, numbers and strings as str(); dates and times in
    ISO form."""
    elements = []
    for value in values:
        if value is None:
            elements.append("NULL")
            continue
        text = value.isoformat() if isinstance(value, date | time) else str(value)
        elements.append('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(elements) + "}"


@functools.lru_cache(maxsize=4096)
def _template(sql: str) -> bytes:
    """A statement's text as bytes for %-formatting: its placeholders are %s, a literal percent sign is %%."""
    return sql.encode()


def _quote(connection: Any, name: str) -> str:
    return str(connection.ops.quote_name(name))


class Dialect:
    name: ClassVar[str]
    # PostgreSQL-only abilities; a caller that needs one picks another strategy where it is missing.
    advisory_locks: ClassVar[bool] = False
    # COPY (copy()), to append many rows without per-row SQL
    copies_rows: ClassVar[bool] = False
    # Shadow tables built beside the live ones and swapped in by renaming, REPEATABLE READ snapshots
    rebuilds_beside_live_tables: ClassVar[bool] = False
    full_text_search: ClassVar[bool] = False
    # An INSERT of at most this many rows, in no particular order, goes as a plain VALUES list of parameters
    # (a command's own rows); more go as rows()
    values_up_to: ClassVar[int] = 0

    def __init__(self, using: str) -> None:
        self.using = using
        # SQL text by the fields it is about (the rows it selects, the values it matches): built once.
        self._rows_sql: dict[tuple[Any, ...], str] = {}

    @property
    def connection(self) -> Any:
        return connections[self.using]

    # --- sending -----------------------------------------------------------------------------------------------
    def send(self, cursor: Any, statements: Sequence[Statement]) -> list[Outcome]:
        """Run the statements in order on this cursor; each one's row count is checked as it arrives."""
        outcomes = []
        for statement in statements:
            cursor.execute(statement.sql, statement.params)
            outcomes.append(_outcome(cursor, statement))
        return outcomes

    # --- values and rows as SQL --------------------------------------------------------------------------------
    def values_in(self, field: Any, values: Sequence[Any]) -> list[Fragment]:
        """The condition, after the column's name, that `field` is one of the values (`IN (...)`, or `= ANY(...)`),
        as one fragment or several to OR (each with its parameters)."""
        raise NotImplementedError

    def rows_per_statement(self, fields: int) -> int:
        """How many rows of `fields` values one rows() fragment holds (and, for their keys, one values_in())."""
        raise NotImplementedError

    def rows(
        self, fields: Sequence[Any], rows: Sequence[Sequence[Any]], constants: Sequence[tuple[Any, Any]] = ()
    ) -> list[Fragment]:
        """A SELECT of the rows (Python values of the fields, in the fields' order) whose columns are named after
        the fields' columns: one fragment or several, each with its parameters. `constants`: (field, value) of
        columns with one value for every row, sent once."""
        raise NotImplementedError

    def _constant_columns(self, constants: Sequence[tuple[Any, Any]]) -> list[str]:
        connection = self.connection
        return [
            f"CAST(%s AS {field.cast_db_type(connection)}) AS {_quote(connection, field.column)}"
            for field, _ in constants
        ]

    def _constant_params(self, constants: Sequence[tuple[Any, Any]]) -> list[Any]:
        return [field.get_db_prep_save(value, self.connection) for field, value in constants]

    @property
    def for_update(self) -> str:
        """The suffix that locks the rows a SELECT reads until the transaction ends ("" where writes serialize)."""
        return ""

    # --- PostgreSQL-only statements (None elsewhere) ----------------------------------------------------------
    def advisory_lock(self, key: int) -> Statement | None:
        """Held until the transaction ends; SQLite needs none (one writer at a time)."""
        return None

    def named_lock(self, namespace: int, name: str, *, shared: bool) -> Statement | None:
        """A transaction-scoped lock on (namespace, name), shared or exclusive."""
        return None

    def repeatable_read(self) -> Statement | None:
        """First in a transaction: every statement of it reads one snapshot."""
        return None

    def commit_without_waiting_for_disk(self) -> Statement | None:
        """This transaction's commit returns before its log is flushed (a crash may lose it: callers that can
        redo their work only)."""
        return None

    def without_bitmap_scans(self) -> Statement | None:
        """For the rest of this transaction the planner reads an index in its order rather than as a bitmap: for a
        query that stops after a few rows of a partial index whose rows leave it (a queue's unpublished rows), an
        ordered scan stops after them and marks the entries of rows gone for good as dead as it passes them, so the
        next scans skip them; a bitmap scan visits every entry's row, every time, until a vacuum."""
        return None

    def notify(self, channel: str) -> Statement | None:
        """Wake the connections listening on `channel` once this transaction commits (none if it rolls back)."""
        return None

    def listening(self, channel: str) -> AbstractContextManager[Callable[[float], None]] | None:
        """On this connection, outside a transaction: a context whose value waits up to the seconds it is given
        for a notification on `channel`, returning early when one arrives. Notifications that arrive after the
        context is entered are never missed. None where the dialect has no notifications, or inside a
        transaction."""
        return None

    def without_nested_loops(self) -> Statement | None:
        """For the rest of this transaction the planner joins by hashing or merging, never by nested loops: for
        a query over whole tables whose statistics may lag a burst of writes (planned for a few rows, a nested
        loop over thousands costs their product)."""
        return None

    # --- reading many rows -------------------------------------------------------------------------------------
    def stream(self, queryset: Any, chunk_size: int, *, server_side: bool) -> Iterator[tuple[Any, ...]]:
        """The rows of a values_list() queryset, `chunk_size` at a time."""
        yield from queryset.iterator(chunk_size=chunk_size)

    def copy(self, table: str, columns: Sequence[str], rows: Any) -> None:
        raise NotImplementedError(f"{self.name} has no COPY: check copies_rows first")


def _outcome(cursor: Any, statement: Statement) -> Outcome:
    # Rows first: SQLite counts the rows of an INSERT ... RETURNING only once they are fetched.
    rows = cursor.fetchall() if cursor.description else []
    rowcount = max(cursor.rowcount, 0)
    statement.check(rowcount)
    return Outcome(rowcount, rows)


class PostgreSQL(Dialect):
    name = "postgresql"
    advisory_locks = True
    copies_rows = True
    rebuilds_beside_live_tables = True
    full_text_search = True
    # Planning and running a VALUES list of a few rows costs PostgreSQL less than unpacking one JSON parameter;
    # past a few dozen rows, adapting each value in Python costs more.
    values_up_to = 32

    def __init__(self, using: str) -> None:
        super().__init__(using)
        # Per thread (each has its own connection): the adapters that quote parameters for that connection (_bound).
        self._literals = threading.local()

    # Rows per statement: enough for any batch here, short of one huge JSON text
    ROWS_PER_STATEMENT = 5000

    def send(self, cursor: Any, statements: Sequence[Statement]) -> list[Outcome]:
        """Several statements go as one query: a client-side cursor sends it over the simple query protocol, and
        PostgreSQL runs them in order (each with a fresh snapshot, so a read after a lock sees the commits of
        every transaction that held it before). One with server-side binding cannot: it sends them one by one.
        They go as text, not as statements prepared on the connection: planned for their values each time, those
        saved PostgreSQL nothing measurable; planned once, they kept plans made while a table was small
        (docs/benchmarks.md, "Measured choices")."""
        if len(statements) < 2 or not isinstance(cursor.cursor, psycopg.ClientCursor):
            return super().send(cursor, statements)
        shown = sending.set(statements)
        try:
            cursor.execute(self._bound(cursor.cursor.connection, statements))
        finally:
            sending.reset(shown)
        outcomes = []
        for index, statement in enumerate(statements):
            if index:
                cursor.nextset()
            outcomes.append(_outcome(cursor, statement))
        return outcomes

    def _bound(self, connection: psycopg.Connection[Any], statements: Sequence[Statement]) -> bytes:
        """The statements as one query with their parameters quoted in (client-side binding, as the cursor would
        do): each statement's text is encoded once per process, and the parameters are quoted by the connection's
        own adapters. The cursor would find the placeholders of the whole query again on every call, since it
        remembers none of more than 50 parameters or 4 KiB, which a query of several statements usually is
        (docs/benchmarks.md, "Measured choices")."""
        literals = getattr(self._literals, "transformer", None)
        if literals is None or self._literals.connection is not connection:
            literals = self._literals.transformer = Transformer.from_context(connection)
            self._literals.connection = connection
        template = b"; ".join(map(_template, (statement.sql for statement in statements)))
        return template % tuple(
            b"NULL" if value is None else literals.as_literal(value)
            for statement in statements
            for value in statement.params
        )

    def values_in(self, field: Any, values: Sequence[Any]) -> list[Fragment]:
        """`= ANY` of the values as one array constant: a condition on the column, which an index on it answers
        with one probe per value; the planner knows how many values there are (and hashes them for a scan without
        an index). A semi-join on the values unpacked from JSON, as rows() does, was planned for 100 of them: with
        statistics behind a table's growth (a burst of writes since the last ANALYZE), a lookup of 3 keys read every
        row of the table that matched its other conditions (docs/benchmarks.md, "Measured choices"). A table that
        was never analyzed is planned from defaults either way. The array is a constant where the cursor binds on
        the client, as Django's does unless told otherwise."""
        sql = self._rows_sql.get((field,))
        if sql is None:
            sql = self._rows_sql[(field,)] = f"= ANY(%s::{field.cast_db_type(self.connection)}[])"
        return [(sql, [array_literal(values)])]

    def rows_per_statement(self, fields: int) -> int:
        return self.ROWS_PER_STATEMENT

    def rows(
        self, fields: Sequence[Any], rows: Sequence[Sequence[Any]], constants: Sequence[tuple[Any, Any]] = ()
    ) -> list[Fragment]:
        shape = (tuple(fields), tuple(field for field, _ in constants))
        sql = self._rows_sql.get(shape)
        if sql is None:
            columns = ", ".join(
                self._constant_columns(constants)
                + [
                    f"{self._element(field, index)} AS {_quote(self.connection, field.column)}"
                    for index, field in enumerate(fields)
                ]
            )
            sql = self._rows_sql[shape] = f"SELECT {columns} FROM json_array_elements(%s::json) AS r"
        constant_params = self._constant_params(constants)
        return [
            (sql, [*constant_params, to_json(list(rows[start : start + self.ROWS_PER_STATEMENT]))])
            for start in range(0, len(rows), self.ROWS_PER_STATEMENT)
        ]

    def _element(self, field: Any, index: int) -> str:
        """Element `index` of the JSON array `r` as a value of `field`'s column (JSON null is SQL NULL)."""
        if isinstance(field, models.JSONField):
            return f"NULLIF((r->{index})::jsonb, 'null'::jsonb)"
        return f"(r->>{index})::{field.cast_db_type(self.connection)}"

    @property
    def for_update(self) -> str:
        return " FOR UPDATE"

    def advisory_lock(self, key: int) -> Statement:
        return Statement("SELECT pg_advisory_xact_lock(%s)", [key])

    def named_lock(self, namespace: int, name: str, *, shared: bool) -> Statement:
        function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        return Statement(f"SELECT {function}(%s, hashtext(%s))", [namespace, name])

    def repeatable_read(self) -> Statement:
        return Statement("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")

    def commit_without_waiting_for_disk(self) -> Statement:
        # SET LOCAL: the setting ends with the transaction, whatever else uses the connection afterwards.
        return Statement("SET LOCAL synchronous_commit TO OFF")

    def without_nested_loops(self) -> Statement:
        return Statement("SET LOCAL enable_nestloop TO OFF")

    def without_bitmap_scans(self) -> Statement:
        return Statement("SET LOCAL enable_bitmapscan TO OFF")

    def notify(self, channel: str) -> Statement:
        return Statement("SELECT pg_notify(%s, '')", [channel])

    def listening(self, channel: str) -> AbstractContextManager[Callable[[float], None]] | None:
        """LISTEN on this connection until the context ends (then UNLISTEN, and what arrived meanwhile is dropped:
        the connection goes back to others with nothing pending). None inside a transaction, where LISTEN would
        take effect only at its commit."""
        return None if self.connection.in_atomic_block else self._listening(channel)

    @contextmanager
    def _listening(self, channel: str) -> Iterator[Callable[[float], None]]:
        connection = self.connection
        name = _quote(connection, channel)
        with connection.cursor() as cursor:
            cursor.execute(f"LISTEN {name}")
        raw = connection.connection

        def wait(seconds: float) -> None:
            for _ in raw.notifies(timeout=max(seconds, 0.0), stop_after=1):
                break

        try:
            yield wait
        finally:
            with connection.cursor() as cursor:
                cursor.execute(f"UNLISTEN {name}")
            for _ in raw.notifies(timeout=0):
                pass

    def stream(self, queryset: Any, chunk_size: int, *, server_side: bool) -> Iterator[tuple[Any, ...]]:
        """The queryset's SQL on a plain psycopg cursor: Django's per-value converters (a JSON column's decoding,
        a UUID's) can cost more than the caller's own work with the rows; this yields psycopg's values (a JSON
        column as its text). `server_side`: a named cursor fetching `chunk_size` rows per round trip, which
        outlives commits when used outside a transaction; otherwise one fetch (a result known to be small,
        which then may get a parallel plan, which a server-side cursor never does)."""
        sql, params = queryset.query.sql_with_params()
        connection = self.connection
        connection.ensure_connection()
        raw = connection.connection
        if server_side:
            cursor = raw.cursor(name=f"sqlkit_stream_{next(_cursor_names)}", withhold=connection.get_autocommit())
            cursor.itersize = chunk_size
        else:
            cursor = raw.cursor()
        with cursor:
            # psycopg's own (C) timestamptz loader, not Django's Python subclass of it: both give the session's
            # time zone, UTC.
            cursor.adapters.register_loader("timestamptz", _TIMESTAMPTZ_LOADER)
            cursor.adapters.register_loader("jsonb", _TEXT_LOADER)
            cursor.adapters.register_loader("json", _TEXT_LOADER)
            cursor.execute(sql, params)
            yield from cursor if server_side else cursor.fetchall()

    def copy(self, table: str, columns: Sequence[str], rows: Any) -> None:
        """Append rows of plain values with COPY: no conflict handling, no per-row SQL."""
        names = ", ".join(_quote(self.connection, column) for column in columns)
        with (
            self.connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY {_quote(self.connection, table)} ({names}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)


_cursor_names = itertools.count()
_TIMESTAMPTZ_LOADER = psycopg.adapters.get_loader(psycopg.adapters.types["timestamptz"].oid, psycopg.pq.Format.TEXT)
_TEXT_LOADER = psycopg.adapters.get_loader(psycopg.adapters.types["text"].oid, psycopg.pq.Format.TEXT)


class SQLite(Dialect):
    name = "sqlite"
    # Keys or rows per statement: under SQLite's limit on parameters (999 in older builds).
    MAX_PARAMS = 999

    def values_in(self, field: Any, values: Sequence[Any]) -> list[Fragment]:
        connection = self.connection
        step = max(1, min(500, self.MAX_PARAMS))
        return [
            (
                f"IN ({', '.join(['%s'] * len(values[start : start + step]))})",
                [field.get_db_prep_value(value, connection) for value in values[start : start + step]],
            )
            for start in range(0, len(values), step)
        ]

    def rows_per_statement(self, fields: int) -> int:
        # values_in() takes up to 500 keys at a time
        return min(500, max(1, self.MAX_PARAMS // max(1, fields)))

    def rows(
        self, fields: Sequence[Any], rows: Sequence[Sequence[Any]], constants: Sequence[tuple[Any, Any]] = ()
    ) -> list[Fragment]:
        connection = self.connection
        constant_params = self._constant_params(constants)
        names = ", ".join(
            self._constant_columns(constants)
            + [f"column{index + 1} AS {_quote(connection, field.column)}" for index, field in enumerate(fields)]
        )
        marks = "(" + ", ".join(["%s"] * len(fields)) + ")"
        step = max(1, (self.MAX_PARAMS - len(constants)) // max(1, len(fields)))
        fragments = []
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            params = constant_params + [
                field.get_db_prep_save(value, connection)
                for row in chunk
                for field, value in zip(fields, row, strict=True)
            ]
            fragments.append((f"SELECT {names} FROM (VALUES {', '.join([marks] * len(chunk))}) AS v", params))
        return fragments


_DIALECTS: dict[str, type[Dialect]] = {"postgresql": PostgreSQL, "sqlite": SQLite}
_chosen: dict[str, Dialect] = {}


def dialect(using: str = "default") -> Dialect:
    """The dialect of a connection alias, chosen on first use and kept (an alias never changes its database)."""
    chosen = _chosen.get(using)
    if chosen is None:
        vendor = connections[using].vendor
        if vendor not in _DIALECTS:
            raise NotImplementedError(f"No SQL dialect for {vendor}: the service runs on PostgreSQL (or SQLite).")
        chosen = _chosen[using] = _DIALECTS[vendor](using)
    return chosen
