"""PostgreSQL: the reads (and the MDM outbox's marking) each unit of work makes per key are
index probes, whatever the planner's statistics and cost settings say, so their cost follows
the keys asked for and not the size of the tables.

The tables are filled after their statistics were taken (as on a fresh installation during
its first long batch, before autovacuum analyzes them), with the server's default costs. The
plan of each read is then asked for with a chunk of 500 keys: every scan of a table that
grows with the SAs must be an index probe with the key in its index condition; a sequential
or bitmap scan, or a hash join, would read the table (or all of an entity type) per chunk.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Connection, event, text

from sync.clock import FixedClock
from sync.mdm.ports import ConsumedPosition, OutboxEntry, OutboxKind
from sync.storage import ccb_schema
from sync.storage.bulk_sql import delete_in, select_in
from sync.storage.ccb import SqlCcbStore
from sync.storage.ccb_batch_queries import SqlBatchQueries, page_query, read_page
from sync.storage.mdm import MdmStore
from sync.storage.outbox_rows import (
    _ERRED_ENTITIES,
    _keyed_lookup,
    _open_sync_todo_keys,
    _queued_sql,
    queued,
    statuses_of,
)
from sync.storage.saact_fast import _FACTS, _LINKS
from sync.storage.stop_upload_fast import _FACTS as _STOP_FACTS
from sync.storage.stop_upload_fast import _OTHERS as _STOP_OTHERS
from tests.contract.test_batch_runner import TODAY

ROWS = 30_000
CHUNK = 500
# Tables that grow with the SAs, with the columns a read looks them up by: a read of a chunk
# must probe them by one of these, never scan them.
GROWING = {
    "ccb_service_agreements": ("id", "master_sa_id", "account_id", "premise_id"),
    "ccb_accounts": ("id",),
    "ccb_persons": ("id",),
    "ccb_premises": ("id",),
    "ccb_sa_sp_links": ("sa_id", "sp_id"),
    "ccb_service_points": ("id",),
    "ccb_sync_requests": ("entity_id", "id"),
    "ccb_sync_entities": ("entity_id",),
    "ccb_todos": ("drill_id",),
    "mdm_acknowledgements": ("source_offset",),
}

# The rows numbered :first to :rows of each table (a range, so the tables can grow in steps).
_SERIES = "generate_series(CAST(:first AS integer), CAST(:rows AS integer))"
_FILL = [statement.replace("{series}", _SERIES) for statement in [
    """INSERT INTO ccb_persons (id, name, name_key, is_business, phones, version)
       SELECT 'P-' || n, 'person ' || n, 'person ' || n, false, '[]', 1
       FROM {series} AS n""",
    """INSERT INTO ccb_premises (id, address, address_key, postal_code, time_zone, version)
       SELECT 'PR-' || n, '{}', 'street ' || n, '1000', 'Europe/Brussels', 1
       FROM {series} AS n""",
    """INSERT INTO ccb_accounts (id, main_person_id, other_person_ids, customer_class,
                                bill_cycle, division, final_bill_pending, version)
       SELECT 'A-' || n, 'P-' || n, '[]', 'RES', 'BC1', 'D1', false, 1
       FROM {series} AS n""",
    """INSERT INTO ccb_service_points (id, premise_id, sp_type, time_zone,
                                      measuring_components, version)
       SELECT 'SP-' || n, 'PR-' || n, 'W-RES', 'Europe/Brussels', '[]', 1
       FROM {series} AS n""",
    """INSERT INTO ccb_service_agreements (id, account_id, sa_type, status, start_date,
                                          premise_id, created_by, audit, version)
       SELECT 'SA-' || n, 'A-' || n, 'W-RES', '10', DATE '2025-03-03', 'PR-' || n, '{}', '[]', 1
       FROM {series} AS n""",
    """INSERT INTO ccb_sa_sp_links (id, sa_id, sp_id, start_date, usage_flag, use_percent)
       SELECT 'L-' || n, 'SA-' || n, 'SP-' || n, DATE '2025-03-03', '+', 100
       FROM {series} AS n""",
    """INSERT INTO ccb_sync_entities (entity_type, entity_id, last_version)
       SELECT 'SA', 'SA-' || n, 1 FROM {series} AS n""",
    """INSERT INTO ccb_sync_requests (id, entity_type, entity_id, state, version, fingerprint,
                                     payload, created_at, updated_at)
       SELECT 'SR-' || n, 'SA', 'SA-' || n, 'PENDING', 1, 'f', '\\x7b7d', now(), now()
       FROM {series} AS n""",
    # An earlier request of every SA left in ERROR: a wave of rejections not resent yet.
    """INSERT INTO ccb_sync_requests (id, entity_type, entity_id, state, version, fingerprint,
                                     payload, created_at, updated_at)
       SELECT 'SR-E' || n, 'SA', 'SA-' || n, 'ERROR', 1, 'f', '\\x7b7d', now(), now()
       FROM {series} AS n""",
    # A To Do per SA (batches raise them for most SAs of a large installation), done.
    """INSERT INTO ccb_todos (id, todo_type, role, status, message, drill_kind, drill_id,
                             created_at, log, version)
       SELECT 'TD-' || n, 'C2M-SYNC', 'SYNC', 'COMPLETE', '', 'sa', 'SA-' || n, now(), '[]', 1
       FROM {series} AS n""",
]]


def _fill(connection: Connection, first: int, rows: int) -> None:
    for statement in _FILL:
        connection.execute(text(statement), {"first": first, "rows": rows})
    connection.commit()


@contextlib.contextmanager
def _analyzed_empty(url: str, rows: int) -> Iterator[Connection]:
    """A CCB database whose tables were analyzed empty, then filled with ``rows`` rows."""
    store = SqlCcbStore(url, clock=FixedClock(TODAY))
    store.create_schema()
    try:
        with store.engine.connect() as connection:
            connection.execute(text("ANALYZE"))  # statistics of the empty tables
            _fill(connection, 1, rows)
            yield connection
    finally:
        store.dispose()


@pytest.fixture
def filled(postgres_url: str) -> Iterator[Connection]:
    with _analyzed_empty(postgres_url, ROWS) as connection:
        yield connection


def _plan(connection: Connection, statement: Any, values: dict[str, Any]) -> dict[str, Any]:
    compiled = statement.compile(dialect=connection.dialect)
    parameters = {**compiled.construct_params(_check=False), **values}
    row = connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled.string}",
                                     parameters).scalar_one()
    document = row if isinstance(row, list) else json.loads(row)
    plan: dict[str, Any] = document[0]["Plan"]
    return plan


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


def _scans_that_read_more_than_their_keys(plan: dict[str, Any]) -> list[str]:
    """Joins that read a whole side, and scans of a growing table whose index condition does
    not name a key column (a scan by entity type alone reads every request of the type)."""
    found = []
    for node in _nodes(plan):
        kind = node["Node Type"]
        if kind in ("Hash Join", "Merge Join"):
            found.append(kind)
        relation = node.get("Relation Name")
        if relation not in GROWING or kind == "ModifyTable":  # the rows found are changed
            continue
        condition = node.get("Index Cond") or node.get("Recheck Cond") or ""
        if kind not in ("Index Scan", "Index Only Scan", "Bitmap Heap Scan") or not any(
                f"({column})::text " in condition or f"({column} " in condition
                for column in GROWING[relation]):
            found.append(f"{kind} on {relation} ({condition or 'no index condition'})")
    return found


def _captured(connection: Connection, call: Any) -> list[tuple[str, Any]]:
    """The statements and parameters ``call()`` sends to the driver on ``connection``."""
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
                _many: bool) -> None:
        captured.append((statement, parameters))

    event.listen(connection, "before_cursor_execute", capture)
    try:
        call()
    finally:
        event.remove(connection, "before_cursor_execute", capture)
    return captured


def _sa_ids() -> list[str]:
    return [f"SA-{n}" for n in range(ROWS // 2, ROWS // 2 + CHUNK)]


@pytest.mark.parametrize("lock", [True, False])
@pytest.mark.parametrize("kind", ["pending", "entities"])
def test_sync_request_and_entity_reads_probe_the_key_index(filled: Connection, kind: str,
                                                           lock: bool) -> None:
    ids = _sa_ids()
    plan = _plan(filled, _keyed_lookup(kind, lock),
                 {"entity_types": ["SA"] * len(ids), "entity_ids": ids})
    assert _scans_that_read_more_than_their_keys(plan) == []


@pytest.mark.parametrize("read", ["facts", "links"])
def test_step_5_9_saact_chunk_reads_probe_the_key_indexes(filled: Connection,
                                                          read: str) -> None:
    statement = (_FACTS if read == "facts" else _LINKS)[False]
    plan = _plan(filled, statement, {"ids": _sa_ids()})
    assert _scans_that_read_more_than_their_keys(plan) == []


@pytest.mark.parametrize("read", ["facts", "others"])
def test_step_1_1_stop_upload_chunk_reads_probe_the_key_indexes(filled: Connection,
                                                                read: str) -> None:
    # Another live SA at the premise, the premise, the main person; the other SAs' links at
    # the SAs' service points: each probed by the chunk's SA, not read whole.
    statement = (_STOP_FACTS if read == "facts" else _STOP_OTHERS)[False]
    plan = _plan(filled, statement, {"ids": _sa_ids()})
    assert _scans_that_read_more_than_their_keys(plan) == []


@pytest.mark.parametrize(("table", "key"), [
    (ccb_schema.service_agreements, "id"), (ccb_schema.sa_sp_links, "sa_id"),
    (ccb_schema.accounts, "id")])
def test_reads_of_a_list_of_keys_probe_the_key_index(filled: Connection, table: Any,
                                                     key: str) -> None:
    """``bulk_sql.select_in``, which the CCB store's bulk reads, its existence checks before
    inserting and the MDM store's reads go through."""
    keys = _sa_ids() if table is not ccb_schema.accounts else \
        [f"A-{n}" for n in range(ROWS // 2, ROWS // 2 + CHUNK)]
    rows: list[tuple[Any, ...]] = []
    captured = _captured(filled, lambda: rows.extend(select_in(filled, table, ("id",), key,
                                                               keys)))
    assert len(rows) == CHUNK
    [(statement, parameters)] = captured
    plan = filled.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters).scalar_one()
    assert _scans_that_read_more_than_their_keys(plan[0]["Plan"]) == []


def test_deletes_of_a_list_of_keys_probe_the_key_index(filled: Connection) -> None:
    """``bulk_sql.delete_in``, which the MDM store's replacing of a subscription's rows goes
    through: each key's delete is an index lookup."""
    captured = _captured(filled, lambda: delete_in(filled, ccb_schema.sa_sp_links, "sa_id",
                                                   _sa_ids()))
    left = filled.execute(text("SELECT count(*) FROM ccb_sa_sp_links")).scalar_one()
    assert left == ROWS - CHUNK
    [(statement, parameters)] = captured
    first = parameters[0] if isinstance(parameters, list) else parameters
    plan = filled.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", first).scalar_one()
    assert _scans_that_read_more_than_their_keys(plan[0]["Plan"]) == []
    filled.rollback()


def test_the_relay_reads_the_head_of_the_queue_in_index_order(filled: Connection) -> None:
    """The relay's batch: the first pending requests in queue order, through the (state, seq)
    index and a stop at the limit, not every pending request read and sorted."""
    batch = queued(filled, CHUNK)
    assert [request.id for request in batch] == [f"SR-{n}" for n in range(1, CHUNK + 1)]
    # In the same transaction, so with the settings the read ran with.
    plan = filled.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {_queued_sql('pyformat')}",
                                  ("PENDING", CHUNK)).scalar_one()
    nodes = [node["Node Type"] for node in _nodes(plan[0]["Plan"])]
    assert nodes == ["Limit", "Index Scan"], nodes
    filled.rollback()


def test_step_5_9_a_selection_page_is_read_in_index_order(filled: Connection) -> None:
    """A batch's selection page (here SAACT's due pending starts after a given SA): the
    range's index read in order up to the page size, not every due row read and sorted."""
    part = SqlBatchQueries(filled.engine).due_pending_sas(TODAY)._parts[0]
    query = page_query(part, (TODAY, "SA-20000"), CHUNK)
    rows = read_page(filled, query)
    assert [row[1] for row in rows] == sorted(f"SA-{n}" for n in range(1, ROWS + 1)
                                              if f"SA-{n}" > "SA-20000")[:CHUNK]
    compiled = query.compile(dialect=filled.dialect)
    plan = filled.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled.string}",
                                  compiled.construct_params()).scalar_one()
    nodes = [node["Node Type"] for node in _nodes(plan[0]["Plan"])]
    assert nodes == ["Limit", "Index Only Scan"] or nodes == ["Limit", "Index Scan"], nodes
    filled.rollback()


def test_the_keyed_reads_find_every_row_once_in_entity_order(filled: Connection) -> None:
    """What the probes return: the row of each key asked for (duplicates and unknown keys
    included in the question), sorted by entity."""
    asked = ["SA-7", "SA-12", "SA-7", "SA-unknown", "SA-100"]
    rows = filled.execute(_keyed_lookup("pending", False), {
        "entity_types": ["SA"] * len(asked), "entity_ids": asked}).mappings().all()
    assert [row["entity_id"] for row in rows] == ["SA-100", "SA-12", "SA-7", "SA-7"]
    assert {row["state"] for row in rows} == {"PENDING"}


def test_marking_mdm_answers_published_scans_only_the_batch_range(postgres_url: str) -> None:
    """The MDM outbox's answers are marked published by source position: the scan covers the
    batch's offsets, not every answer of the partition."""
    store = MdmStore(postgres_url)
    store.create_schema()
    topic = "c2m.sync-requests"
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
                _many: bool) -> None:
        if statement.startswith("UPDATE mdm_acknowledgements"):
            captured.append((statement, parameters))

    try:
        with store.engine.connect() as connection:
            connection.execute(text("ANALYZE"))
            connection.execute(text(
                "INSERT INTO mdm_acknowledgements (source_topic, source_partition, source_offset,"
                " sync_request_id, entity_type, entity_id, version, outcome, document)"
                " SELECT :topic, 0, n, 'SR-' || n, 'SA', 'SA-' || n, 1, 'APPLIED', '{}'"
                " FROM generate_series(0, :rows - 1) AS n"), {"topic": topic, "rows": ROWS})
            connection.commit()
        batch = range(ROWS // 2, ROWS // 2 + CHUNK)
        event.listen(store.engine, "before_cursor_execute", capture)
        store.mark_published([
            OutboxEntry(OutboxKind.ACKNOWLEDGEMENT, None, b"{}",
                        ConsumedPosition(topic, 0, offset)) for offset in batch],
            dt.datetime(2025, 3, 3, tzinfo=dt.UTC))
        event.remove(store.engine, "before_cursor_execute", capture)
        assert len(captured) == 1
        statement, parameters = captured[0]
        with store.engine.connect() as connection:
            published = connection.execute(text(
                "SELECT min(source_offset), max(source_offset), count(*)"
                " FROM mdm_acknowledgements WHERE published_at IS NOT NULL")).one()
            assert tuple(published) == (batch[0], batch[-1], CHUNK)
            plan = connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}",
                                              parameters).scalar_one()
        assert _scans_that_read_more_than_their_keys(plan[0]["Plan"]) == []
    finally:
        store.dispose()


# --- plans kept by prepared statements ----------------------------------------------------
#
# The driver prepares a statement on a connection after its fifth execution, and PostgreSQL
# may then keep one generic plan for it, made without the parameters' values and with the
# table sizes of that moment. A read that only probes when the planner knows how many keys
# it has, or how big the table is now, would then read the table whole for every key once
# it has grown, until the table's next analyze.

SMALL = 20


def _driver_statement(connection: Connection, read: Any) -> tuple[str, list[Any]]:
    """The statement and positional parameters ``read(connection)`` sends to the driver."""
    statement, parameters = _captured(connection, lambda: read(connection))[0]
    if isinstance(parameters, list):  # an executemany: its first parameter set
        parameters = parameters[0]
    if isinstance(parameters, dict):
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            names.append(match.group(1))
            return f"${len(names)}"

        return re.sub(r"%\((\w+)\)s", number, statement), [parameters[n] for n in names]
    count = iter(range(1, 1 + len(parameters)))
    return re.sub(r"%s", lambda _: f"${next(count)}", statement), list(parameters)


def _statement_of(compiled_read: Any, values: dict[str, Any]) -> Any:
    def read(connection: Connection) -> None:
        connection.execute(compiled_read, values).fetchall()
    return read


_KEYS = [f"SA-{n}" for n in range(ROWS // 2, ROWS // 2 + CHUNK)]
# Read by the relay (marking a batch sent) and the acknowledgements, for every batch.
_REQUEST_IDS = [f"SR-{n}" for n in range(ROWS // 2, ROWS // 2 + CHUNK)]
_GENERIC_READS: dict[str, Any] = {
    "select_in SAs": lambda c: select_in(c, ccb_schema.service_agreements, ("id",), "id", _KEYS),
    "select_in links": lambda c: select_in(c, ccb_schema.sa_sp_links, ("id",), "sa_id", _KEYS),
    "delete_in links": lambda c: delete_in(c, ccb_schema.sa_sp_links, "sa_id", _KEYS),
    "pending requests": _statement_of(_keyed_lookup("pending", True), {
        "entity_types": ["SA"] * CHUNK, "entity_ids": _KEYS}),
    "sync entities": _statement_of(_keyed_lookup("entities", True), {
        "entity_types": ["SA"] * CHUNK, "entity_ids": _KEYS}),
    "SAACT facts": _statement_of(_FACTS[False], {"ids": _KEYS}),
    "SAACT links": _statement_of(_LINKS[False], {"ids": _KEYS}),
    "request states, locked": lambda c: statuses_of(c, _REQUEST_IDS, lock=True),
    "request states": lambda c: statuses_of(c, _REQUEST_IDS),
    "open sync To Dos": lambda c: _open_sync_todo_keys(("C2M-SYNC",), "sa").rows(c, _KEYS),
    "entities in ERROR": lambda c: _ERRED_ENTITIES.rows(c, _KEYS),
}


@pytest.mark.parametrize("read", list(_GENERIC_READS))
def test_a_plan_kept_from_small_tables_still_probes_the_key_index(postgres_url: str,
                                                                  read: str) -> None:
    """Each per-key read prepared (with the generic plan forced) while the tables hold a few
    rows, right after their statistics were taken empty: the plan it keeps once they hold
    30,000 is still an index probe per key."""
    with _analyzed_empty(postgres_url, SMALL) as connection:
        statement, parameters = _driver_statement(connection, _GENERIC_READS[read])
        connection.rollback()
        driver = connection.connection.driver_connection
        assert isinstance(driver, psycopg.Connection)
        literals = psycopg.ClientCursor(driver).mogrify(
            ", ".join(["%s"] * len(parameters)), parameters)
        connection.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        connection.exec_driver_sql(f"PREPARE probe AS {statement}")
        connection.exec_driver_sql(f"EXECUTE probe({literals})")  # the plan made now
        connection.rollback()
        _fill(connection, SMALL + 1, ROWS)
        plan = connection.exec_driver_sql(
            f"EXPLAIN (FORMAT JSON) EXECUTE probe({literals})").scalar_one()
        assert _scans_that_read_more_than_their_keys(plan[0]["Plan"]) == []
