"""Executing one statement with thousands of parameter sets at the driver's own speed.

``connection.execute(statement, rows)`` with a list of dictionaries spends more time in
SQLAlchemy's per-row parameter handling (compiling the parameters of each row, running each
column's bind processor through generic code) than the database spends on the rows. The helpers
here compile the statement once, convert each row with the very bind processors SQLAlchemy
would use for its columns (dates, JSON documents, money, time stamps come out exactly as they
would) and hand the tuples to the DB-API ``executemany``. Same rows written, fewer microseconds.

PostgreSQL's driver (psycopg) still sends an ``executemany`` one statement per row, so there
the rows travel instead as one array per column, unnested by the server into one ``INSERT``
(column types an array carries as they are; any other, such as a JSON document, keeps the
``executemany``).

Reading many rows by key is the same story the other way round: :func:`select_in` builds the
``IN`` list's placeholders itself (SQLAlchemy would expand the list afresh on every execution)
and converts the values with each column's own result processor (SQLite's dates).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import (
    ARRAY,
    JSON,
    Boolean,
    Column,
    ColumnElement,
    Connection,
    Date,
    DateTime,
    Enum,
    Executable,
    Float,
    Integer,
    LargeBinary,
    Numeric,
    Select,
    String,
    Subquery,
    Table,
    Text,
    UniqueConstraint,
    any_,
    bindparam,
    func,
    literal_column,
    select,
    true,
)
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeEngine

Processor = Callable[[Any], Any] | None

# Bound parameters of one IN list: far below SQLite's limit of 32,766 variables per statement.
IN_LIMIT = 2_000
# The keys of one IN list read or deleted by :func:`select_in` and :func:`delete_in`: smaller,
# because each list length is a statement of its own to the server's cache.
IN_CHUNK = 500


def in_batches(values: Sequence[Any], size: int = IN_LIMIT) -> Iterator[Sequence[Any]]:
    """``values`` in slices small enough for one IN list."""
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _placeholder(connection: Connection) -> str:
    style = connection.dialect.paramstyle
    if style == "qmark":
        return "?"
    if style in ("format", "pyformat"):
        return "%s"
    raise ValueError(f"unsupported DB-API parameter style {style!r}")


def _processor(connection: Connection, column: Column[Any]) -> Processor:
    dialect = connection.dialect
    processor: Processor = column.type.dialect_impl(dialect).bind_processor(dialect)
    return processor


def _moment_key(value: Any) -> Any:
    # Equal datetimes of one time zone can still be different instants (``fold``), and
    # equal instants in different zones may be stored differently: the key keeps all three.
    if isinstance(value, dt.datetime):
        return (value, value.tzinfo, value.fold)
    return value


def _column(values: list[Any], process: Processor) -> list[Any]:
    """One column's values through its processor. Dates and time stamps repeat across a
    batch (a unit's time stamp, a batch's business date) and their processors are the
    costliest: each distinct one is converted once."""
    if process is None:
        return values
    first = values[0] if values else None
    if all(value is first for value in values):
        # the very same object in every row (a batch's time stamp): a processor gives the
        # same result for the same value
        return [process(first)] * len(values)
    if type(first) not in (dt.datetime, dt.date):
        return list(map(process, values))
    converted: dict[Any, Any] = {}
    column = []
    for value in values:
        key = _moment_key(value)
        if key not in converted:
            converted[key] = process(value)
        column.append(converted[key])
    return column


def _converted(rows: Sequence[Mapping[str, Any]], names: Sequence[str],
               processors: Sequence[Processor]) -> list[tuple[Any, ...]]:
    """The rows as tuples, converted a column at a time. Every value goes through its
    processor, None too: a JSON column stores None as JSON null."""
    columns = [_column([row[name] for row in rows], process)
               for name, process in zip(names, processors, strict=True)]
    return list(zip(*columns, strict=True))


class RawSelect:
    """A select with one expanding ``IN`` parameter, read at the driver's speed: its rows as
    the driver returns them, tuples in column order without SQLAlchemy's result processing
    (on SQLite dates come as their ISO text, flags as 0/1, JSON documents as text; on
    PostgreSQL as Python values). The SQL of each dialect and list length is rendered once,
    where SQLAlchemy renders it for every execution. For module-level queries read thousands
    of times. With ``array`` the list is not an ``IN`` list but one array parameter (a
    PostgreSQL statement written with ``bindparam(list_name, type_=ARRAY(...))``)."""

    def __init__(self, statement: Executable, list_name: str, *, array: bool = False) -> None:
        self.statement = statement
        self.list_name = list_name
        self.array = array
        self.columns: list[str] = list(
            statement.selected_columns.keys())  # type: ignore[attr-defined]
        self._compiled: dict[str, SQLCompiler] = {}
        self._rendered: dict[tuple[str, int], tuple[str, Sequence[str] | None]] = {}

    def rows(self, connection: Connection, values: Sequence[Any]) -> list[tuple[Any, ...]]:
        dialect = connection.dialect
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = cast(SQLCompiler, self.statement.compile(  # type: ignore[attr-defined]
                dialect=dialect))
            self._compiled[dialect.name] = compiled
        length = -1 if self.array else len(values)
        rendered = self._rendered.get((dialect.name, length))
        if rendered is None:
            if self.array:
                rendered = (compiled.string, compiled.positiontup)
            else:
                state = compiled.construct_expanded_state({self.list_name: list(values)})
                rendered = (state.statement, state.positiontup)
            self._rendered[(dialect.name, length)] = rendered
        sql, order = rendered
        given = dict(compiled.construct_params(_check=False))
        if self.array:
            given[self.list_name] = list(values)
        else:
            given.update((f"{self.list_name}_{number}", value)
                         for number, value in enumerate(values, start=1))
        parameters: Any = tuple(given[name] for name in order) if order is not None else given
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql, parameters)
            return list(cursor.fetchall())
        finally:
            cursor.close()


def _name(connection: Connection, name: str) -> str:
    quoted: str = connection.dialect.identifier_preparer.quote(name)
    return quoted


def insert_many(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """``INSERT`` every row (all with the same columns) in one ``executemany``."""
    if not rows:
        return
    names = list(rows[0])
    processors = [_processor(connection, table.c[name]) for name in names]
    mark = _placeholder(connection)
    columns = ", ".join(_name(connection, name) for name in names)
    arrays = _array_types(connection, table, names)
    if arrays is not None:
        values = ", ".join(f"v{index}" for index in range(len(names)))
        connection.exec_driver_sql(
            f"INSERT INTO {_name(connection, table.name)} ({columns}) SELECT {values}"
            f" FROM unnest({', '.join(f'{_ARRAY_MARK}::{array}' for array in arrays)})"
            f" WITH ORDINALITY AS given({values}, position) ORDER BY position",
            tuple(map(list, zip(*_converted(rows, names, processors), strict=True))))
        return
    connection.exec_driver_sql(
        f"INSERT INTO {_name(connection, table.name)} ({columns})"
        f" VALUES ({', '.join(mark for _ in names)})", _converted(rows, names, processors))


# psycopg's placeholder of a parameter sent in binary: its text format escapes every array
# element in Python, the binary one copies it.
_ARRAY_MARK = "%b"


def _array_types(connection: Connection, table: Table,
                 names: Sequence[str]) -> list[str] | None:
    """PostgreSQL: the array type that carries each column's values to an unnest insert, or
    None (another database, or a column no array here carries). Without lengths or scales:
    an explicit cast to ``varchar(64)`` would cut a longer text that the insert itself
    refuses; the column's own type applies as the row is stored, as it does to a parameter."""
    if connection.dialect.name != "postgresql":
        return None
    arrays = [_array_type(table.c[name].type.dialect_impl(connection.dialect))
              for name in names]
    return None if None in arrays else [array for array in arrays if array is not None]


# PostgreSQL array types by column type, the first that matches (a Float is a Numeric too).
_ARRAY_TYPES: tuple[tuple[type[TypeEngine[Any]], str], ...] = (
    (Boolean, "boolean[]"), (Integer, "bigint[]"), (Float, "double precision[]"),
    (Numeric, "numeric[]"), (Date, "date[]"), (String, "text[]"), (LargeBinary, "bytea[]"))


def _array_type(kind: TypeEngine[Any]) -> str | None:
    if isinstance(kind, JSON | Enum):  # a wrapped document; a type of its own
        return None
    if isinstance(kind, DateTime):
        return "timestamptz[]" if kind.timezone else "timestamp[]"
    return next((array for base, array in _ARRAY_TYPES if isinstance(kind, base)), None)


def update_many(connection: Connection, table: Table, set_columns: Sequence[str],
                where_columns: Sequence[str], rows: Sequence[Mapping[str, Any]],
                as_stored: Sequence[str] = (), incremented: Sequence[str] = ()) -> int:
    """``UPDATE table SET set_columns WHERE where_columns`` (equalities), once per row in one
    ``executemany``; each row maps ``set:<name>`` and ``where:<name>`` to its values. The
    ``as_stored`` columns are given as the database stores them (a JSON document's text) and
    are not converted. The ``incremented`` columns are set to one more than they hold (a
    counter), without a value in the rows. Returns the summed row count."""
    if not rows:
        return 0
    mark = _placeholder(connection)
    assignments = [f"{_name(connection, name)} = {mark}" for name in set_columns]
    assignments += [f"{_name(connection, name)} = {_name(connection, name)} + 1"
                    for name in incremented]
    sql = (f"UPDATE {_name(connection, table.name)} SET "
           + ", ".join(assignments)
           + " WHERE "
           + " AND ".join(f"{_name(connection, name)} = {mark}" for name in where_columns))
    keys = [f"set:{name}" for name in set_columns] + [f"where:{name}" for name in where_columns]
    processors = [None if name in as_stored else _processor(connection, table.c[name])
                  for name in set_columns]
    processors += [_processor(connection, table.c[name]) for name in where_columns]
    result = connection.exec_driver_sql(
        sql, _converted(rows, keys, processors))
    return int(result.rowcount)


def _key_list(connection: Connection, table: Table, key: str,
              keys: Sequence[Any]) -> tuple[str, list[Any]]:
    """``key IN (?, ...)`` for ``keys`` and its parameters, converted for the key column.

    Not ``key = ANY(%s)`` with one array on PostgreSQL, though the driver would parse that
    statement once: measured, the server's time then grew with the tables (the MDM worker
    benchmark's 50,000 records took 40 s instead of 15 s), most likely a generic plan kept
    for the prepared statement."""
    process = _processor(connection, table.c[key])
    mark = _placeholder(connection)
    converted = list(keys) if process is None else list(map(process, keys))
    return f"{_name(connection, key)} IN ({', '.join(mark for _ in keys)})", converted


def select_in(connection: Connection, table: Table, columns: Sequence[str], key: str,
              keys: Sequence[Any], order_by: Sequence[str] = (), *,
              lock: bool = False) -> list[tuple[Any, ...]]:
    """``SELECT columns FROM table WHERE key IN keys ORDER BY order_by``, asked in chunks of
    keys (each chunk ordered; the chunks in the order of ``keys``), the values as SQLAlchemy
    would return them for these columns. ``lock``: and hold the rows until the end of the
    transaction (``FOR UPDATE``), taken in key order, on databases with row locks."""
    if not keys:
        return []
    dialect = connection.dialect
    lock = lock and dialect.name == "postgresql"
    types = [table.c[name].type.dialect_impl(dialect) for name in columns]
    probes = _probes(connection, table, columns, key, tuple(order_by), lock)
    head = (f"SELECT {', '.join(_name(connection, name) for name in columns)}"
            f" FROM {_name(connection, table.name)} WHERE ")
    tail = (f" ORDER BY {', '.join(_name(connection, name) for name in order_by)}"
            if order_by else "") + (" FOR UPDATE" if lock else "")
    convert = _processor(connection, table.c[key])
    found: list[tuple[Any, ...]] = []
    # Locks in key order, as every other locking read takes them: two units locking the same
    # rows cannot wait for each other. The probes run in the order of the keys' array.
    asked = sorted(dict.fromkeys(keys)) if lock else list(dict.fromkeys(keys))
    for part in in_batches(asked, IN_CHUNK):
        if probes is not None:
            result = connection.exec_driver_sql(probes, (
                list(part) if convert is None else list(map(convert, part)),))
        else:
            condition, parameters = _key_list(connection, table, key, part)
            result = connection.exec_driver_sql(head + condition + tail, tuple(parameters))
        # A result processor may depend on the type the driver reports (numbers on psycopg).
        description = result.cursor.description
        converting = [(index, process) for index, kind in enumerate(types)
                      if (process := kind.result_processor(dialect, description[index][1]))
                      is not None]
        rows = result.fetchall()
        if not converting:
            found += map(tuple, rows)
            continue
        for row in rows:
            values = list(row)
            for index, process in converting:
                values[index] = process(values[index])
            found.append(tuple(values))
    return found


def delete_in(connection: Connection, table: Table, key: str, keys: Sequence[Any]) -> None:
    """``DELETE FROM table WHERE key IN keys``, in chunks of keys.

    On PostgreSQL, by a key that leads an index: ``key = %s`` once per key in one
    ``executemany`` (pipelined by the driver), each an index lookup. A list of keys let the
    planner, while a table's statistics lagged behind its growth, read the whole table for
    every chunk (each key's share of the rows guessed, times the length of the list)."""
    if keys and connection.dialect.name == "postgresql" and _leads_an_index(table, key):
        convert = _processor(connection, table.c[key])
        connection.exec_driver_sql(
            f"DELETE FROM {_name(connection, table.name)} WHERE {_name(connection, key)} = %s",
            [(key_ if convert is None else convert(key_),) for key_ in dict.fromkeys(keys)])
        return
    for part in in_batches(keys, IN_CHUNK):
        condition, parameters = _key_list(connection, table, key, part)
        connection.exec_driver_sql(
            f"DELETE FROM {_name(connection, table.name)} WHERE {condition}", tuple(parameters))


def update_in(connection: Connection, table: Table, values: Mapping[str, Any],
              equal: Mapping[str, Any], key: str, keys: Sequence[Any], *,
              ranged: bool = False) -> int:
    """``UPDATE table SET values WHERE equal (equalities) AND key IN keys``, in chunks of
    keys, every value converted by its column's bind processor; returns the rows updated.

    ``ranged`` (integer keys only: text would compare by the database's collation) bounds
    each chunk's condition by its smallest and largest key too (``key BETWEEN``): with
    ``equal`` and that range on the leading columns of an index, the scan covers the chunk's
    range whatever the planner believes about the table. Without it PostgreSQL, its
    statistics taken while the table was small, scanned the index by ``equal`` alone and
    filtered every row of it (all of a partition's answers for each batch of the MDM outbox),
    so the cost of a batch grew with the table."""
    mark = _placeholder(connection)
    names = [*values, *equal]
    fixed = [value if (process := _processor(connection, table.c[name])) is None
             else process(value)
             for name, value in [*values.items(), *equal.items()]]
    head = (f"UPDATE {_name(connection, table.name)} SET "
            + ", ".join(f"{_name(connection, name)} = {mark}" for name in values)
            + " WHERE "
            + "".join(f"{_name(connection, name)} = {mark} AND " for name in names[len(values):]))
    updated = 0
    convert = _processor(connection, table.c[key]) or int
    between = f"{_name(connection, key)} BETWEEN {mark} AND {mark} AND " if ranged else ""
    for part in in_batches(keys, IN_CHUNK):
        condition, parameters = _key_list(connection, table, key, part)
        bounds = (convert(min(part)), convert(max(part))) if ranged else ()
        result = connection.exec_driver_sql(head + between + condition,
                                            (*fixed, *bounds, *parameters))
        updated += int(result.rowcount)
    return updated


def _probes(connection: Connection, table: Table, columns: Sequence[str], key: str,
            order_by: tuple[str, ...], lock: bool = False) -> str | None:
    """PostgreSQL: :func:`select_in`'s statement as one index probe per key, or None (another
    database, or a key that is not the first column of an index or has no array type here).

    The keys are one array, each looked up by a lateral subquery the planner cannot merge
    into a join (``OFFSET 0``). As ``key IN (...)`` the plan followed the planner's estimates,
    and while a table's statistics lagged behind its growth (a long run on fresh tables,
    before autovacuum's next analyze) it chose to read the whole table, or all of an index,
    for every chunk of keys: the cost of a unit grew with the tables."""
    if connection.dialect.name != "postgresql" or not _leads_an_index(table, key):
        return None
    arrays = _array_types(connection, table, [key])
    if arrays is None:
        return None
    inner = list(dict.fromkeys([*columns, *order_by]))
    name = functools.partial(_name, connection)
    return (f"SELECT {', '.join(f'found.{name(column)}' for column in columns)}"
            f" FROM unnest({_ARRAY_MARK}::{arrays[0]}) AS wanted(key)"
            f" CROSS JOIN LATERAL (SELECT {', '.join(map(name, inner))}"
            f" FROM {name(table.name)} WHERE {name(key)} = wanted.key OFFSET 0"
            f"{' FOR UPDATE' if lock else ''}) AS found"
            + (f" ORDER BY {', '.join(f'found.{name(column)}' for column in order_by)}"
               if order_by else ""))


@functools.cache
def _leads_an_index(table: Table, key: str) -> bool:
    """Whether ``key`` is the first column of the table's primary key, of a unique constraint
    or of an index (a probe by it is an index lookup)."""
    firsts = {columns[0].name for columns in (
        list(table.primary_key.columns),
        *(list(index.columns) for index in table.indexes),
        *(list(constraint.columns) for constraint in table.constraints
          if isinstance(constraint, UniqueConstraint))) if columns}
    return key in firsts


def probed_keys(*arrays: tuple[str, str]) -> Subquery:
    """PostgreSQL: text array parameters, each given as (parameter name, column name),
    unnested side by side and sorted, as the subquery ``wanted`` that drives one index probe
    per key (a lateral subquery joined to it). ``OFFSET 0`` keeps the planner from merging it
    into the query, so its order is the order the probes run and lock rows in."""
    given = (func.unnest(*(bindparam(name, type_=ARRAY(Text)) for name, _ in arrays))
             .table_valued(*(column for _, column in arrays)).render_derived(name="given"))
    return (select(*given.c).order_by(*given.c).offset(literal_column("0"))
            .subquery("wanted"))


def each_probed(wanted: Subquery, per_key: Select[Any], *, one: bool = False,
                lock: bool = False) -> Select[Any]:
    """PostgreSQL: ``per_key`` (a select whose condition names ``wanted``'s columns) run once
    per key of ``wanted`` (:func:`probed_keys`), as a lateral subquery: with ``one`` at most
    one row per key (``LIMIT 1``), else every row (``OFFSET 0``); either keeps the planner from
    merging it into a join, so its plan is an index probe per key, in the keys' order.
    ``lock``: ``FOR UPDATE``, the rows locked in that order."""
    limited = per_key.limit(literal_column("1")) if one else per_key.offset(literal_column("0"))
    found = (limited.with_for_update() if lock else limited).lateral("found")
    return select(*found.c).select_from(wanted).join(found, true())


def in_index_order(connection: Connection) -> None:
    """PostgreSQL: no sorting for the rest of this transaction, so a read ordered as one of
    its indexes is read from that index in order and stops at its limit. For reads whose only
    sensible plan is that (the head of a queue, a page of a range): left to its estimates,
    taken while few rows matched, the planner read every matching row and sorted them, for
    every page. Only in a read transaction of its own."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL enable_sort = off")


def one_of(connection: Connection, column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
    """``column IN :name`` for a list of values bound as ``name``. On PostgreSQL the list is
    one array parameter (``= ANY``): the statement's text is the same for any length and the
    driver adapts the list at once, where an IN list renders, casts and sends each value as a
    parameter of its own. Elsewhere SQLAlchemy's expanding IN list."""
    if connection.dialect.name == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))
