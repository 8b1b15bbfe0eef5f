"""Statements built from a model's metadata: its table (or a twin of it), its columns, its fields' conversions.

What reaches a table is what the ORM would have written: single values go through each field's own
`get_db_prep_save`, rows of many values through the dialect (sqlkit/dialects.py), and rows read back come through
the same converters the ORM applies (`decode`).
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.db import connections, models
from django.db.models.sql import UpdateQuery

from sqlkit.dialects import dialect
from sqlkit.statement import Statement

Model = type[models.Model]


def _field(model: Model, name: str) -> Any:
    return model._meta.get_field(name)


def _quote(using: str, name: str) -> str:
    return str(connections[using].ops.quote_name(name))


def _table(model: Model, table: str | None, using: str) -> str:
    return _quote(using, table or model._meta.db_table)


def _column(model: Model, name: str, using: str) -> str:
    return _quote(using, _field(model, name).column)


def field_values(model: Model, values: Mapping[str, Any], *, using: str = "default") -> list[Any]:
    """The values as the named fields of the model convert them for the database (what the ORM would send)."""
    connection = connections[using]
    return [_field(model, name).get_db_prep_save(value, connection) for name, value in values.items()]


@dataclass(frozen=True)
class OnConflict:
    """What an INSERT does with a row whose `target` (a unique set of fields) exists already.

    `update`: fields set from the new row; `add`: fields the new row's value is added to; neither: DO NOTHING.
    `only_if`: a condition on the existing row for the update, with `{row}` for the table and `{new}` for the
    new row, e.g. `"{row}.expires_at <= {new}.created_at"`.
    """

    target: tuple[str, ...]
    update: tuple[str, ...] = ()
    add: tuple[str, ...] = ()
    only_if: str = ""


def insert(
    model: Model,
    rows: Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]],
    *,
    columns: Sequence[str] | None = None,
    constants: Mapping[str, Any] | None = None,
    table: str | None = None,
    on_conflict: OnConflict | None = None,
    returning: Sequence[str] = (),
    order_by: Sequence[str] = (),
    expect_rows: int | None = None,
    mismatch: Callable[[], Exception] | None = None,
    using: str = "default",
) -> list[Statement]:
    """INSERT the rows, Python values by field name (the same names in every row), or in `columns` order: one
    statement, or several when the dialect's limit on one is reached. `order_by` (default: the conflict target)
    is the order the rows are written in, so that transactions writing overlapping rows queue on the first they
    share instead of deadlocking. `constants`: values by field name that every row has, sent once (not once a row).
    `expect_rows` and `mismatch` apply to a single statement only."""
    if not rows:
        return []
    if columns is None:
        mappings: Sequence[Mapping[str, Any]] = rows  # type: ignore[assignment]
        names = tuple(mappings[0])
        values: Sequence[Sequence[Any]] = [[row[name] for name in names] for row in mappings]
    else:
        names, values = tuple(columns), rows  # type: ignore[assignment]
    constants = constants or {}
    ordered = bool(order_by or on_conflict)
    shape = (model, table, names, tuple(constants), on_conflict, tuple(returning), tuple(order_by), using)
    if len(values) <= dialect(using).values_up_to and (len(values) == 1 or not ordered):
        # A few rows (a command's own): a plain VALUES list is the cheapest statement to plan and run.
        head, tail = _insert_sql(True, *shape)
        connection = connections[using]
        fields = [_field(model, name) for name in (*constants, *names)]
        marks = "(" + ", ".join(["%s"] * len(fields)) + ")"
        params = [
            field.get_db_prep_save(value, connection)
            for row in values
            for field, value in zip(fields, (*constants.values(), *row), strict=True)
        ]
        sql = head + ", ".join([marks] * len(values)) + tail
        return [Statement(sql, params, expect_rows=expect_rows, mismatch=mismatch)]
    head, tail = _insert_sql(False, *shape)
    fragments = dialect(using).rows(
        [_field(model, name) for name in names],
        values,
        [(_field(model, name), value) for name, value in constants.items()],
    )
    if len(fragments) > 1 and expect_rows is not None:
        raise ValueError("expect_rows needs the rows in one statement")
    return [
        Statement(head + source + tail, params, expect_rows=expect_rows, mismatch=mismatch)
        for source, params in fragments
    ]


@lru_cache(maxsize=1024)
def _insert_sql(
    values_list: bool,
    model: Model,
    table: str | None,
    names: tuple[str, ...],
    constant_names: tuple[str, ...],
    on_conflict: OnConflict | None,
    returning: tuple[str, ...],
    order_by: tuple[str, ...],
    using: str,
) -> tuple[str, str]:
    """The INSERT around its VALUES list (`values_list`) or its rows' SELECT, built once per shape (the quoting
    of names costs more than a small statement's values)."""
    columns = ", ".join(_column(model, name, using) for name in (*constant_names, *names))
    head = f"INSERT INTO {_table(model, table, using)} ({columns}) "
    if values_list:
        return head + "VALUES ", _upsert_tail(model, table, on_conflict, returning, using)
    order = list(order_by or (on_conflict.target if on_conflict else ()))
    # WHERE true: SQLite needs it to tell the SELECT's end from an upsert's ON CONFLICT.
    tail = ") AS s WHERE true"
    if order:
        tail += " ORDER BY " + ", ".join(f"s.{_column(model, name, using)}" for name in order)
    return f"{head}SELECT {columns} FROM (", tail + _upsert_tail(model, table, on_conflict, returning, using)


def _upsert_tail(
    model: Model, table: str | None, on_conflict: OnConflict | None, returning: tuple[str, ...], using: str
) -> str:
    tail = ""
    if on_conflict is not None:
        tail += " " + _conflict_clause(model, on_conflict, table, using)
    if returning:
        tail += " RETURNING " + ", ".join(_column(model, name, using) for name in returning)
    return tail


def _conflict_clause(model: Model, on_conflict: OnConflict, table: str | None, using: str) -> str:
    target = ", ".join(_column(model, name, using) for name in on_conflict.target)
    quoted_table = _table(model, table, using)
    assignments = [
        f"{_column(model, name, using)} = EXCLUDED.{_column(model, name, using)}" for name in on_conflict.update
    ] + [
        f"{_column(model, name, using)} = {quoted_table}.{_column(model, name, using)} "
        f"+ EXCLUDED.{_column(model, name, using)}"
        for name in on_conflict.add
    ]
    if not assignments:
        return f"ON CONFLICT ({target}) DO NOTHING"
    clause = f"ON CONFLICT ({target}) DO UPDATE SET {', '.join(assignments)}"
    if on_conflict.only_if:
        clause += " WHERE " + on_conflict.only_if.format(row=quoted_table, new="EXCLUDED")
    return clause


def update(
    model: Model,
    values: Mapping[str, Any],
    *,
    where: Mapping[str, Any],
    computed: Mapping[str, Any] | None = None,
    condition: models.Q | None = None,
    returning: Sequence[str] = (),
    expect_rows: int | None = None,
    mismatch: Callable[[], Exception] | None = None,
    using: str = "default",
) -> Statement:
    """UPDATE the rows matching `where` (equality on each field).

    `computed`: fields set by an expression of the row's own columns and constants (`F("version") + 1`, `Now()`,
    `Now() + timedelta(...)`); `condition`: a further filter of the row's own columns and constants (a Q); each
    compiled by the ORM once per object (module constants): the SQL the ORM's `QuerySet.update()` would send,
    without compiling a query each time (docs/benchmarks.md, "Measured choices in the code"). `returning`: fields whose
    new values the statement returns, for each row it updated (`decode` reads them)."""
    computed = computed or {}
    expressions = [_compiled(model, expression, using) for expression in computed.values()]
    condition_sql, condition_params = _compiled(model, condition, using) if condition is not None else ("", ())
    sql = _update_sql(
        model,
        tuple(values),
        tuple(where),
        using,
        tuple(zip(computed, (sql for sql, _ in expressions), strict=True)),
        condition_sql,
        tuple(returning),
    )
    return Statement(
        sql,
        [
            *field_values(model, values, using=using),
            *(param for _, params in expressions for param in params),
            *field_values(model, where, using=using),
            *condition_params,
        ],
        expect_rows=expect_rows,
        mismatch=mismatch,
    )


_compiled_sql: dict[tuple[int, Model, str], tuple[Any, str, tuple[Any, ...]]] = {}


def _compiled(model: Model, expression: Any, using: str) -> tuple[str, tuple[Any, ...]]:
    """The SQL of an expression (what a column is set to) or a Q (a condition) over `model`'s own table, compiled
    once per object (keyed by its identity: hashing a Django expression deconstructs it, which costs about what
    compiling it does). Callers pass long-lived objects (module constants); past 256 the cache starts over."""
    key = (id(expression), model, using)
    cached = _compiled_sql.get(key)
    if cached is not None and cached[0] is expression:
        return cached[1], cached[2]
    query = UpdateQuery(model)
    compiler = query.get_compiler(using)
    if isinstance(expression, models.Q):
        query.add_q(expression)
        sql, params = query.where.as_sql(compiler, compiler.connection)
    else:
        sql, params = compiler.compile(expression.resolve_expression(query, allow_joins=False, for_save=True))
    if len(_compiled_sql) >= 256:
        _compiled_sql.clear()
    _compiled_sql[key] = (expression, sql, tuple(params))
    return sql, tuple(params)


@lru_cache(maxsize=1024)
def _update_sql(
    model: Model,
    names: tuple[str, ...],
    where: tuple[str, ...],
    using: str,
    computed: tuple[tuple[str, str], ...] = (),
    condition: str = "",
    returning: tuple[str, ...] = (),
) -> str:
    assignments = ", ".join(
        [
            *(f"{_column(model, name, using)} = %s" for name in names),
            *(f"{_column(model, name, using)} = {sql}" for name, sql in computed),
        ]
    )
    conditions = " AND ".join(
        [*(f"{_column(model, name, using)} = %s" for name in where), *([f"({condition})"] if condition else [])]
    )
    sql = f"UPDATE {_table(model, None, using)} SET {assignments} WHERE {conditions}"
    if returning:
        sql += " RETURNING " + ", ".join(_column(model, name, using) for name in returning)
    return sql


def delete(model: Model, *, where: Mapping[str, Any], table: str | None = None, using: str = "default") -> Statement:
    """DELETE the rows matching `where` (equality on each field), however many there are (none too)."""
    return Statement(_delete_sql(model, tuple(where), table, using), field_values(model, where, using=using))


@lru_cache(maxsize=1024)
def _delete_sql(model: Model, where: tuple[str, ...], table: str | None, using: str) -> str:
    conditions = " AND ".join(f"{_column(model, name, using)} = %s" for name in where)
    return f"DELETE FROM {_table(model, table, using)} WHERE {conditions}"


def update_many(
    model: Model, key: str, fields: Sequence[str], rows: Sequence[Sequence[Any]], *, using: str = "default"
) -> list[Statement]:
    """Set `fields` of each row named by `key`: rows are (key, *values), one statement for them all (per the
    dialect's limit), cheaper to build than a CASE per row. The rows to update are found by their keys among
    values_in() (an index probe each), so the join with the new values is one of a few rows on both sides: a
    join alone was planned from the table's statistics, and read every row of a table that had grown since."""
    if not rows:
        return []
    chosen = dialect(using)
    fields_of_rows = [_field(model, name) for name in (key, *fields)]
    table = _table(model, None, using)
    key_column = f"{table}.{_column(model, key, using)}"
    assignments = ", ".join(f"{_column(model, name, using)} = s.{_column(model, name, using)}" for name in fields)
    step = chosen.rows_per_statement(len(fields_of_rows))
    statements = []
    for start in range(0, len(rows), step):
        chunk = rows[start : start + step]
        ((source, params),) = chosen.rows(fields_of_rows, chunk)
        ((among, key_params),) = chosen.values_in(fields_of_rows[0], [row[0] for row in chunk])
        statements.append(
            Statement(
                f"UPDATE {table} SET {assignments} FROM ({source}) AS s "
                f"WHERE {key_column} = s.{_column(model, key, using)} AND {key_column} {among}",
                [*params, *key_params],
            )
        )
    return statements


def select(
    model: Model,
    columns: Sequence[str] | None = None,
    *,
    where: Mapping[str, Any] | None = None,
    where_in: tuple[str, Sequence[Any]] | None = None,
    keys_in: tuple[Sequence[str], Sequence[Sequence[Any]]] | None = None,
    condition: str = "",
    order_by: Sequence[str] = (),
    limit: int | None = None,
    lock: bool = False,
    table: str | None = None,
    using: str = "default",
) -> list[Statement]:
    """SELECT `columns` (field names; default every concrete field) of the rows matching every given condition:
    `where` (equality on each field), `where_in` (a field among values), `keys_in` (a tuple of fields among rows
    of values), `condition` (SQL of its own, no parameters). One statement, or one per chunk of a long
    `where_in`/`keys_in` (SQLite). `lock`: FOR UPDATE where the dialect has it."""
    names = tuple(columns) if columns is not None else tuple(f.name for f in model._meta.concrete_fields)
    chosen = dialect(using)
    where = where or {}
    head, conditions, tail = _select_sql(
        model, names, tuple(where), condition, tuple(order_by), limit, lock, table, using
    )
    params = field_values(model, where, using=using)
    chunks: list[tuple[str, list[Any]]] = [("", [])]
    if where_in is not None:
        name, values = where_in
        if not values:
            return []
        field = _field(model, name)
        chunks = [
            (f"{_quote(using, field.column)} {sql}", in_params) for sql, in_params in chosen.values_in(field, values)
        ]
    elif keys_in is not None:
        key_names, key_rows = keys_in
        if not key_rows:
            return []
        key_fields = [_field(model, name) for name in key_names]
        key_columns = ", ".join(_quote(using, field.column) for field in key_fields)
        chunks = [
            (f"({key_columns}) IN (SELECT {key_columns} FROM ({source}) AS k)", key_params)
            for source, key_params in chosen.rows(key_fields, key_rows)
        ]
    statements = []
    for chunk_sql, chunk_params in chunks:
        every = [*conditions, chunk_sql] if chunk_sql else conditions
        where_sql = f" WHERE {' AND '.join(every)}" if every else ""
        statements.append(Statement(head + where_sql + tail, [*params, *chunk_params]))
    return statements


@lru_cache(maxsize=1024)
def _select_sql(
    model: Model,
    names: tuple[str, ...],
    where: tuple[str, ...],
    condition: str,
    order_by: tuple[str, ...],
    limit: int | None,
    lock: bool,
    table: str | None,
    using: str,
) -> tuple[str, tuple[str, ...], str]:
    """A SELECT's text around its conditions, and its conditions that do not depend on a list of values."""
    head = f"SELECT {', '.join(_column(model, name, using) for name in names)} FROM {_table(model, table, using)}"
    conditions = tuple(f"{_column(model, name, using)} = %s" for name in where) + ((condition,) if condition else ())
    tail = ""
    if order_by:
        tail += " ORDER BY " + ", ".join(_column(model, name, using) for name in order_by)
    if limit is not None:
        tail += f" LIMIT {int(limit)}"
    if lock:
        tail += dialect(using).for_update
    return head, conditions, tail


def where_in(model: Model, name: str, values: Sequence[Any], *, using: str = "default") -> tuple[str, list[Any]]:
    """A condition (SQL and parameters) that the field named `name` is one of `values`, for a query of the ORM's
    (RawSQL): one `IN`, or several OR'ed where the dialect takes fewer values at a time."""
    field = _field(model, name)
    column = _quote(using, field.column)
    fragments = dialect(using).values_in(field, values)
    if not fragments:
        return "false", []
    sql = " OR ".join(f"{column} {fragment}" for fragment, _ in fragments)
    return (f"({sql})" if len(fragments) > 1 else sql), [p for _, params in fragments for p in params]


def exists(model: Model, *, using: str = "default", **where: Any) -> Statement:
    """Whether a row matches `where` (equality on each field): `SELECT 1 ... LIMIT 1`."""
    return Statement(_exists_sql(model, tuple(where), using), field_values(model, where, using=using))


@lru_cache(maxsize=1024)
def _exists_sql(model: Model, where: tuple[str, ...], using: str) -> str:
    conditions = " AND ".join(f"{_column(model, name, using)} = %s" for name in where)
    return f"SELECT 1 FROM {_table(model, None, using)} WHERE {conditions} LIMIT 1"


def decode(
    model: Model,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    plain: Sequence[str] = (),
    using: str = "default",
) -> list[tuple[Any, ...]]:
    """Rows as the ORM would read them: each column through its field's and its backend's converters (a UUID
    from SQLite's text, a JSON column's value from its text). Columns without converters are left as they are, and
    so are the `plain` ones, which are no field of the model (a query's text annotations)."""
    connection = connections[using]
    converters = []
    for index, name in enumerate(columns):
        if name in plain:
            continue
        field = _field(model, name)
        functions = connection.ops.get_db_converters(field.cached_col) + field.get_db_converters(connection)
        if functions:
            converters.append((index, field.cached_col, functions))
    if not converters:
        return [tuple(row) for row in rows]
    decoded = []
    for row in rows:
        values = list(row)
        for index, expression, functions in converters:
            for function in functions:
                values[index] = function(values[index], expression, connection)
        decoded.append(tuple(values))
    return decoded
