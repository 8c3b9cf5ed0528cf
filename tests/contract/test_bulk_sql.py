"""The driver-level helpers of ``sync.storage.bulk_sql`` store and find exactly what SQLAlchemy's
own statements would: the same rows inserted (PostgreSQL's unnest of one array per column
included), the same rows read by key, the same rows deleted, the same refusals."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError

from sync.storage.bulk_sql import _probes, delete_in, insert_many, select_in, update_in
from sync.storage.common import create_engine_for

metadata = MetaData()


def _table(name: str, *indexes: Index) -> Table:
    return Table(
        name, metadata,
        Column("seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
               autoincrement=True),
        Column("code", String(8), nullable=False),
        Column("note", Text),
        Column("count", Integer),
        Column("big", BigInteger),
        Column("ratio", Float),
        Column("amount", Numeric(12, 2)),
        Column("flag", Boolean),
        Column("day", Date),
        Column("at", DateTime(timezone=True)),
        Column("raw", LargeBinary),
        *indexes,
    )


GENERAL, FAST = _table("bulk_general"), _table("bulk_fast")
# Read by an indexed key: on PostgreSQL ``select_in`` probes the index once per key.
INDEXED = _table("bulk_indexed", Index("ix_bulk_indexed_code", "code"),
                 Index("ix_bulk_indexed_count", "count"))
DOCUMENTS = Table("bulk_documents", metadata, Column("code", String(8), primary_key=True),
                  Column("document", JSON))
UTC = dt.UTC
ROWS: list[dict[str, Any]] = [
    {"code": "A", "note": "plain", "count": 1, "big": 2**40, "ratio": 100.0,
     "amount": decimal.Decimal("12.34"), "flag": True, "day": dt.date(2025, 3, 1),
     "at": dt.datetime(2025, 3, 1, 12, 0, tzinfo=UTC), "raw": b"\x00\x01"},
    {"code": "B", "note": None, "count": None, "big": None, "ratio": None, "amount": None,
     "flag": None, "day": None, "at": None, "raw": None},
    {"code": "C", "note": 'quotes " \' , {braces} \\ back\nslash \u00e9', "count": -7,
     "big": -(2**62), "ratio": -0.0, "amount": decimal.Decimal("0.005"), "flag": False,
     "day": dt.date(1, 1, 1),
     "at": dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
     "raw": b""},
    {"code": "NULL", "note": "NULL", "count": 0, "big": 0, "ratio": 1e-300,
     "amount": decimal.Decimal("-9999999999.99"), "flag": True, "day": dt.date(9999, 12, 31),
     "at": dt.datetime(1970, 1, 1, tzinfo=UTC), "raw": b"NULL"},
]


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    created = create_engine_for(database_url)
    metadata.create_all(created)
    yield created
    created.dispose()


def _rows(connection: Connection, table: Table) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in connection.execute(select(table).order_by(table.c.seq))]


def test_insert_many_writes_the_rows_an_insert_writes(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(insert(GENERAL), ROWS)
        insert_many(connection, FAST, ROWS)
        assert _rows(connection, FAST) == _rows(connection, GENERAL)
        # The sequence follows the order given, as each insert of its own would.
        assert [row[1] for row in _rows(connection, FAST)] == [row["code"] for row in ROWS]


def test_insert_many_of_a_json_column_writes_what_an_insert_writes(engine: Engine) -> None:
    rows = [{"code": "A", "document": {"phones": [{"number": "555", "primary": True}]}},
            {"code": "B", "document": None}, {"code": "C", "document": [1, "two", None]}]
    with engine.begin() as connection:
        insert_many(connection, DOCUMENTS, rows)
        fast = [tuple(row) for row in connection.execute(
            select(DOCUMENTS).order_by(DOCUMENTS.c.code))]
        connection.execute(delete(DOCUMENTS))
        connection.execute(insert(DOCUMENTS), rows)
        general = [tuple(row) for row in connection.execute(
            select(DOCUMENTS).order_by(DOCUMENTS.c.code))]
    assert fast == general


@pytest.fixture
def postgres_engine(postgres_url: str) -> Iterator[Engine]:
    created = create_engine_for(postgres_url)
    metadata.create_all(created)
    yield created
    created.dispose()


@pytest.mark.parametrize("bad", [{"code": "TOO-LONG-A-CODE"}, {"count": 2**40}])
def test_insert_many_refuses_what_an_insert_refuses(postgres_engine: Engine,
                                                    bad: dict[str, Any]) -> None:
    """PostgreSQL only: SQLite stores any length and any integer in these columns."""
    engine = postgres_engine
    rows = [ROWS[0], {**ROWS[1], **bad}]
    for write in (lambda c: c.execute(insert(GENERAL), rows),
                  lambda c: insert_many(c, FAST, rows)):
        with pytest.raises(DBAPIError), engine.begin() as connection:
            write(connection)


@pytest.mark.parametrize("table", [GENERAL, INDEXED], ids=["in-list", "index-probes"])
def test_select_in_finds_what_a_select_finds(engine: Engine, table: Table) -> None:
    with engine.begin() as connection:
        assert (_probes(connection, table, ["code"], "code", ()) is not None) == (
            table is INDEXED and engine.dialect.name == "postgresql")
        connection.execute(insert(table), ROWS * 3)
        columns = ["code", "note", "ratio", "amount", "flag", "day", "at", "raw", "seq"]
        keys = ["NULL", "A", "missing", "C", "A"]
        general = [tuple(row) for row in connection.execute(
            select(*(table.c[name] for name in columns))
            .where(table.c.code.in_(keys)).order_by(table.c.code, table.c.seq))]
        fast = select_in(connection, table, columns, "code", keys, order_by=("code", "seq"))
        assert fast == general
        assert [tuple(map(type, row)) for row in fast] == \
            [tuple(map(type, row)) for row in general]
        by_number = select_in(connection, table, ["seq"], "count", [1, -7, 1])
        assert sorted(by_number) == sorted(tuple(row) for row in connection.execute(
            select(table.c.seq).where(table.c.count.in_([1, -7]))))
        # Ordered by a column not selected.
        assert select_in(connection, table, ["note"], "code", ["C", "A"], order_by=("seq",)) \
            == [tuple(row) for row in connection.execute(
                select(table.c.note).where(table.c.code.in_(["C", "A"])).order_by(table.c.seq))]
        assert select_in(connection, table, ["code"], "code", []) == []


@pytest.mark.parametrize("table", [GENERAL, INDEXED], ids=["in-list", "index-probes"])
def test_select_in_asks_in_chunks_and_keeps_their_order(engine: Engine, table: Table) -> None:
    keys = [f"K{index:04d}" for index in range(1200)]
    with engine.begin() as connection:
        connection.execute(insert(table), [{"code": key} for key in keys])
        assert select_in(connection, table, ["code"], "code", keys,
                         order_by=("code",)) == [(key,) for key in keys]


@pytest.mark.parametrize("table", [GENERAL, INDEXED], ids=["in-list", "index-probes"])
def test_select_in_with_lock_holds_the_rows_it_read(postgres_engine: Engine,
                                                    table: Table) -> None:
    """PostgreSQL: ``lock`` reads the same rows, held until the transaction ends (another
    transaction cannot lock one of them meanwhile)."""
    with postgres_engine.begin() as connection:
        connection.execute(insert(table), ROWS)
    with postgres_engine.connect() as holder, postgres_engine.connect() as other:
        locked = select_in(holder, table, ["code", "seq"], "code", ["C", "A", "C"], lock=True)
        assert sorted(locked) == sorted(select_in(other, table, ["code", "seq"], "code",
                                                  ["A", "C"]))
        with pytest.raises(DBAPIError, match="could not obtain lock"):
            other.execute(select(table.c.seq).where(table.c.code == "A")
                          .with_for_update(nowait=True))
        other.rollback()
        assert other.execute(select(table.c.seq).where(table.c.code == "B")
                             .with_for_update(nowait=True)).all() != []
        holder.rollback()


@pytest.mark.parametrize("table", [FAST, INDEXED], ids=["in-list", "index-probes"])
def test_delete_in_deletes_what_a_delete_deletes(engine: Engine, table: Table) -> None:
    keys = ["A", "C", "missing", "A"]
    with engine.begin() as connection:
        connection.execute(insert(GENERAL), ROWS * 2)
        connection.execute(insert(table), ROWS * 2)
        connection.execute(delete(GENERAL).where(GENERAL.c.code.in_(keys)))
        delete_in(connection, table, "code", keys)
        assert [row[1:] for row in _rows(connection, table)] == \
            [row[1:] for row in _rows(connection, GENERAL)]
        connection.execute(delete(GENERAL).where(GENERAL.c.count.in_([0, -7])))
        delete_in(connection, table, "count", [0, -7])
        assert [row[1:] for row in _rows(connection, table)] == \
            [row[1:] for row in _rows(connection, GENERAL)]
        delete_in(connection, table, "code", [])


def test_update_in_updates_what_an_update_updates(engine: Engine) -> None:
    keys = ["A", "NULL", "missing", "C"]
    values = {"at": dt.datetime(2025, 3, 1, 7, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
              "note": "it's {done}\n", "amount": decimal.Decimal("1.005")}
    equal = {"flag": True, "big": 2**40}
    with engine.begin() as connection:
        connection.execute(insert(GENERAL), ROWS)
        connection.execute(insert(FAST), ROWS)
        expected = connection.execute(update(GENERAL).where(
            GENERAL.c.flag == equal["flag"], GENERAL.c.big == equal["big"],
            GENERAL.c.code.in_(keys)).values(**values)).rowcount
        assert update_in(connection, FAST, values, equal, "code", keys) == expected == 1
        assert [row[1:] for row in _rows(connection, FAST)] == \
            [row[1:] for row in _rows(connection, GENERAL)]
        # Without equalities, and more keys than one IN list holds.
        many = ["C", *(f"K{n}" for n in range(1_200)), "B"]
        connection.execute(update(GENERAL).where(GENERAL.c.code.in_(many)).values(count=5))
        assert update_in(connection, FAST, {"count": 5}, {}, "code", many) == 2
        assert [row[1:] for row in _rows(connection, FAST)] == \
            [row[1:] for row in _rows(connection, GENERAL)]
        # Integer keys bounded by their range: the same rows, in every chunk of keys.
        numbers = [-(2**62), *range(-600, 600, 3), 2**40]
        expected = connection.execute(
            update(GENERAL).where(GENERAL.c.big.in_(numbers)).values(count=9)).rowcount
        assert update_in(connection, FAST, {"count": 9}, {}, "big", numbers,
                         ranged=True) == expected == 3
        assert [row[1:] for row in _rows(connection, FAST)] == \
            [row[1:] for row in _rows(connection, GENERAL)]
