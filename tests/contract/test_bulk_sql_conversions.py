"""The driver-level bulk writes convert dates and time stamps as SQLAlchemy does (each distinct
one converted once), and the driver-level select reads what SQLAlchemy reads."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import (
    JSON,
    Column,
    Date,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    select,
)

from sync.storage.bulk_sql import RawSelect, insert_many, update_many
from sync.storage.ccb_schema import Cents, UtcDateTime

NEW_YORK = ZoneInfo("America/New_York")

METADATA = MetaData()
SAMPLES = Table(
    "bulk_samples", METADATA,
    Column("id", Integer, primary_key=True),
    Column("at", UtcDateTime),
    Column("local_at", DateTime),
    Column("day", Date),
    Column("amount", Cents),
    Column("note", String),
    Column("document", JSON),
)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url)
    METADATA.create_all(engine)
    yield engine
    engine.dispose()


def _rows() -> list[dict[str, Any]]:
    """Time stamps and dates that repeat, as a batch's do, and the cases a cache of
    converted values could confuse: one instant in two zones, one wall time twice in a zone
    (``fold``), a date beside a midnight datetime."""
    instant = dt.datetime(2025, 3, 3, 12, 0, tzinfo=dt.UTC)
    ambiguous = dt.datetime(2025, 11, 2, 1, 30, tzinfo=NEW_YORK)
    moments = [instant, instant, instant.astimezone(NEW_YORK), ambiguous,
               ambiguous.replace(fold=1), ambiguous, None, instant]
    local = [dt.datetime(2025, 3, 3), dt.datetime(2025, 3, 3), dt.datetime(2025, 3, 3, 0, 0, 1),
             None, dt.datetime(2025, 3, 3), dt.datetime(2025, 3, 4), dt.datetime(2025, 3, 3),
             dt.datetime(2025, 3, 3)]
    days = [dt.date(2025, 3, 3), dt.date(2025, 3, 3), None, dt.date(2025, 3, 4),
            dt.date(2025, 3, 3), dt.date(2025, 3, 4), dt.date(2025, 3, 3), dt.date(2025, 3, 3)]
    return [{"id": number, "at": moment, "local_at": wall, "day": day,
             "amount": Decimal("12.5") if number % 2 else Decimal("12.50"),
             "note": None if number == 3 else f"n{number % 3}",
             "document": {"n": number % 2}}
            for number, (moment, wall, day) in enumerate(zip(moments, local, days, strict=True))]


def _stored(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(
            select(SAMPLES).order_by(SAMPLES.c.id))]


def test_insert_many_stores_what_sqlalchemy_stores(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(SAMPLES.insert(), _rows())
    expected = _stored(engine)
    with engine.begin() as connection:
        connection.execute(SAMPLES.delete())
        insert_many(connection, SAMPLES, _rows())
    assert _stored(engine) == expected
    # the two wall-clock-equal moments of the ambiguous hour are different instants
    assert expected[3][1] != expected[4][1]


def test_update_many_stores_what_sqlalchemy_stores(engine: Engine) -> None:
    first = _rows()
    later = [{**row, "at": first[(number + 3) % len(first)]["at"],
              "day": first[(number + 1) % len(first)]["day"]}
             for number, row in enumerate(first)]
    with engine.begin() as connection:
        connection.execute(SAMPLES.insert(), first)
        for row in later:
            connection.execute(SAMPLES.update().where(SAMPLES.c.id == row["id"]).values(
                at=row["at"], day=row["day"]))
    expected = _stored(engine)
    with engine.begin() as connection:
        connection.execute(SAMPLES.delete())
        connection.execute(SAMPLES.insert(), first)
        count = update_many(connection, SAMPLES, ("at", "day"), ("id",), [
            {"set:at": row["at"], "set:day": row["day"], "where:id": row["id"]}
            for row in later])
    assert count == len(later)
    assert _stored(engine) == expected


def test_raw_select_reads_the_rows_sqlalchemy_reads(engine: Engine) -> None:
    """Constants of the statement and the list's values land in their places, for lists of
    every length (each length's SQL is rendered once and reused)."""
    with engine.begin() as connection:
        connection.execute(SAMPLES.insert(), _rows())
    query = (select(SAMPLES.c.id, SAMPLES.c.note)
             .where(SAMPLES.c.note != "n0", SAMPLES.c.id.in_(bindparam("ids", expanding=True)),
                    SAMPLES.c.id > 1)
             .order_by(SAMPLES.c.id))
    read = RawSelect(query, "ids")
    with engine.connect() as connection:
        for ids in ([1, 2, 4, 5, 7], [7, 2], [4, 5, 6, 7, 1], [3, 4]):
            expected = [tuple(row) for row in connection.execute(query, {"ids": ids})]
            assert read.rows(connection, ids) == expected
            assert expected  # each list finds rows, so a misplaced value would show
