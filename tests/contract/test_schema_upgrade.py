"""Opening a database made by an earlier version: ``create_schema`` creates the indexes that
version did not have, on tables that already hold data, for both stores and both databases.

An earlier version's database is simulated by dropping indexes from a current one: the tables
stay, with their rows, and only the indexes are missing, as they were before they were added.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from sqlalchemy import Connection, Engine, MetaData, inspect, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import TextClause

from sync.clock import FixedClock
from sync.storage import ccb_schema, mdm_schema, outbox_schema
from sync.storage.ccb import SqlCcbStore
from sync.storage.mdm import MdmStore

TODAY = dt.date(2025, 3, 3)


def _index_names(engine: Engine, metadata: MetaData) -> dict[str, set[str]]:
    """The indexes the database has on each table of ``metadata``, by name."""
    inspector = inspect(engine)
    return {table.name: {str(index["name"]) for index in inspector.get_indexes(table.name)}
            for table in metadata.sorted_tables}


def _declared(metadata: MetaData) -> dict[str, set[str]]:
    return {table.name: {str(index.name) for index in table.indexes}
            for table in metadata.sorted_tables}


def _drop(engine: Engine, names: list[str]) -> None:
    with engine.begin() as connection:
        for name in names:
            connection.execute(text(f"DROP INDEX {name}"))


def _missing(engine: Engine, metadata: MetaData) -> dict[str, set[str]]:
    present = _index_names(engine, metadata)
    return {table: wanted - present[table]
            for table, wanted in _declared(metadata).items() if wanted - present[table]}


def test_the_ccb_store_creates_the_indexes_an_earlier_version_lacked(database_url: str) -> None:
    store = SqlCcbStore(database_url, clock=FixedClock(TODAY))
    try:
        store.create_schema()
        with store.engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO ccb_persons (id, name, name_key, is_business, phones, version)"
                " VALUES ('P-1', 'Ann', 'ann', false, '[]', 1)"))
        # The sync outbox's tables are part of the CCB database (registered by its module).
        assert outbox_schema.sync_requests.name in ccb_schema.metadata.tables
        dropped = ["ix_ccb_todos_drill", "ux_ccb_todos_open_per_key",
                   "ix_ccb_sync_requests_state_seq", "ux_ccb_sync_requests_pending"]
        _drop(store.engine, dropped)
        assert set().union(*_missing(store.engine, ccb_schema.metadata).values()) == set(dropped)

        store.create_schema()

        assert _missing(store.engine, ccb_schema.metadata) == {}
        unique = {str(index["name"]): bool(index["unique"]) for index in
                  inspect(store.engine).get_indexes("ccb_todos")}
        assert unique["ux_ccb_todos_open_per_key"] is True
        with store.engine.connect() as connection:  # the rows the tables held are still there
            assert connection.execute(text("SELECT count(*) FROM ccb_persons")).scalar_one() == 1
    finally:
        store.dispose()


def test_the_mdm_store_creates_the_indexes_an_earlier_version_lacked(database_url: str) -> None:
    store = MdmStore(database_url)
    try:
        store.create_schema()
        dropped = ["ix_mdm_us_sp_links_sp"]
        _drop(store.engine, dropped)
        assert set().union(*_missing(store.engine, mdm_schema.metadata).values()) == set(dropped)

        store.create_schema()

        assert _missing(store.engine, mdm_schema.metadata) == {}
    finally:
        store.dispose()


def test_creating_the_schema_again_changes_nothing(database_url: str) -> None:
    store = SqlCcbStore(database_url, clock=FixedClock(TODAY))
    try:
        store.create_schema()
        before = _index_names(store.engine, ccb_schema.metadata)
        store.create_schema()
        assert _index_names(store.engine, ccb_schema.metadata) == before
        assert _missing(store.engine, ccb_schema.metadata) == {}
    finally:
        store.dispose()


def _request_row(connection: Connection, number: int, entity_id: str, state: str) -> None:
    connection.execute(text(
        "INSERT INTO ccb_sync_requests (id, entity_type, entity_id, state, version, fingerprint,"
        " payload, created_at, updated_at) VALUES (:id, 'SA', :entity, :state, 1, 'f', :payload,"
        " :at, :at)"), {"id": f"SR-T{number}", "entity": entity_id, "state": state,
                        "payload": b"{}", "at": dt.datetime(2025, 3, 3, tzinfo=dt.UTC)})


def _validity(engine: Engine, name: str) -> bool | None:
    with engine.connect() as connection:
        found = connection.execute(text(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = :name"), {"name": name}).scalar_one_or_none()
    return None if found is None else bool(found)


def _seen(engine: Engine, count: TextClause) -> None:
    """Wait (10 s at most) until ``count`` is 1. PostgreSQL's statistics views are read once
    per transaction: each look is a transaction of its own."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as watcher:
        for _ in range(500):
            if watcher.execute(count).scalar_one():
                break
            time.sleep(0.02)
        assert watcher.execute(count).scalar_one() == 1


def test_postgresql_builds_a_missing_index_without_holding_up_writes(postgres_url: str) -> None:
    """An upgrade's index on a table in use: the build waits for the transaction under way,
    and meanwhile other writes to the table go through (a plain CREATE INDEX queues a lock
    that every later write waits behind)."""
    store = SqlCcbStore(postgres_url, clock=FixedClock(TODAY))
    store.create_schema()
    _drop(store.engine, ["ix_ccb_sync_requests_entity"])
    writer = store.engine.connect()
    under_way = writer.begin()
    _request_row(writer, 1, "SA-1", "SYNCHRONIZED")  # not committed: the build waits for it
    build = threading.Thread(target=store.create_schema)
    build.start()
    try:
        waiting = text("SELECT count(*) FROM pg_stat_activity WHERE query ILIKE "
                       "'CREATE%INDEX%ix_ccb_sync_requests_entity%' AND wait_event_type = 'Lock'")
        _seen(store.engine, waiting)
        with store.engine.connect() as other, other.begin():
            other.execute(text("SET LOCAL lock_timeout = '2s'"))
            _request_row(other, 2, "SA-2", "SYNCHRONIZED")  # goes through at once
    finally:
        under_way.commit()
        writer.close()
        build.join(30)
    assert not build.is_alive()
    assert _validity(store.engine, "ix_ccb_sync_requests_entity") is True
    store.dispose()


def test_postgresql_rebuilds_an_index_a_failed_build_left_invalid(postgres_url: str) -> None:
    store = SqlCcbStore(postgres_url, clock=FixedClock(TODAY))
    store.create_schema()
    _drop(store.engine, ["ux_ccb_sync_requests_pending"])
    with store.engine.begin() as connection:  # two pending requests of one SA: not unique
        _request_row(connection, 1, "SA-1", "PENDING")
        _request_row(connection, 2, "SA-1", "PENDING")

    with pytest.raises(IntegrityError, match="ux_ccb_sync_requests_pending"):
        store.create_schema()
    assert _validity(store.engine, "ux_ccb_sync_requests_pending") is False  # left behind

    with store.engine.begin() as connection:
        connection.execute(text("UPDATE ccb_sync_requests SET state = 'DISCARDED' "
                                "WHERE id = 'SR-T2'"))
    store.create_schema()
    assert _validity(store.engine, "ux_ccb_sync_requests_pending") is True
    with pytest.raises(IntegrityError), store.engine.begin() as connection:
        _request_row(connection, 3, "SA-1", "PENDING")  # the uniqueness holds again
    store.dispose()


def test_postgresql_a_second_start_waits_for_the_index_another_start_is_building(
        postgres_url: str) -> None:
    """Two services of an upgrade starting together: the second finds the index the first is
    building (invalid until done) and waits for it, instead of taking it for the leftover of
    a failed build and dropping it under the first."""
    store = SqlCcbStore(postgres_url, clock=FixedClock(TODAY))
    store.create_schema()
    _drop(store.engine, ["ix_ccb_sync_requests_entity"])
    second_store = SqlCcbStore(postgres_url, clock=FixedClock(TODAY))
    failures: list[BaseException] = []

    def start(which: SqlCcbStore) -> None:
        try:
            which.create_schema()
        except BaseException as error:  # reported by the assertion below
            failures.append(error)

    writer = store.engine.connect()
    under_way = writer.begin()
    _request_row(writer, 1, "SA-1", "SYNCHRONIZED")  # the first build waits for it
    first = threading.Thread(target=start, args=(store,))
    second = threading.Thread(target=start, args=(second_store,))
    first.start()
    try:
        building = text("SELECT count(*) FROM pg_stat_progress_create_index p "
                        "JOIN pg_class c ON c.oid = p.index_relid "
                        "WHERE c.relname = 'ix_ccb_sync_requests_entity'")
        _seen(store.engine, building)
        second.start()
        second.join(1.5)
        assert second.is_alive()  # waiting for the first's build
    finally:
        under_way.commit()
        writer.close()
        first.join(30)
        second.join(30)
    assert failures == []
    assert _validity(store.engine, "ix_ccb_sync_requests_entity") is True
    store.dispose()
    second_store.dispose()
