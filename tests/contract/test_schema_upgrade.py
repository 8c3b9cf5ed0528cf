"""Opening a database made by an earlier version: ``create_schema`` creates the indexes that
version did not have, on tables that already hold data, for both stores and both databases.

An earlier version's database is simulated by dropping indexes from a current one: the tables
stay, with their rows, and only the indexes are missing, as they were before they were added.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, MetaData, inspect, text

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
