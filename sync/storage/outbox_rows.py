"""The rows of the sync outbox: reading requests, and writing many of them in a few statements.

Every write of a request row is conditional on what was read (``WHERE id = :id AND version =
:read AND state = :state``), and every write of an entity's snapshot version on the version read.
Writes are collected as operations and executed per statement shape with all their parameter
sets at once; the rows matched are summed, and a sum short of the count means another writer
changed a row meanwhile: :class:`~sync.ccb.errors.ConcurrentUpdateError` names the first row
no longer as read. The bulk paths read their rows with ``FOR UPDATE`` first (PostgreSQL; SQLite
has a single writer), so a concurrent writer either came first and is seen in what was read,
or waits for this transaction.
Inserts keep their order, so the queue position (``seq``) follows the order of the operations.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    Select,
    TextualSelect,
    and_,
    any_,
    bindparam,
    insert,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect, RowMapping
from sqlalchemy.sql.dml import Insert

from sync.ccb.errors import ConcurrentUpdateError
from sync.ccb.model import DrillKey, ToDoEntry, ToDoStatus
from sync.ccb.sync_requests import (
    SETTLED_STATES,
    QueuedRequest,
    RequestFacts,
    RequestStatus,
    SyncError,
    SyncRequest,
    SyncRequestState,
    drill_target,
    sync_todo_types,
)
from sync.config.admin import AdminConfig
from sync.storage.bulk_sql import (
    RawSelect,
    each_probed,
    in_batches,
    in_index_order,
    insert_many,
    one_of,
    probed_keys,
    select_in,
    update_many,
)
from sync.storage.ccb_schema import TODOS, todos
from sync.storage.ccb_view import SqlCcbView
from sync.storage.outbox_schema import (
    ERRORS_INDEX,
    ack_positions,
    sync_entities,
    sync_requests,
)

EntityKey = tuple[str, str]

# Bind names of the WHERE clauses of bulk updates; they must differ from every column name.
_W_VERSION = "where_version"
_W_TYPE = "where_entity_type"
_W_ENTITY = "where_entity_id"

# (entity type, entity id) pairs per statement: two bound parameters each.
_KEY_BATCH = 500


# --- reading ---------------------------------------------------------------------------------


def request_of(row: RowMapping) -> SyncRequest:
    return SyncRequest(
        id=row["id"], seq=int(row["seq"]), entity_type=row["entity_type"],
        entity_id=row["entity_id"], state=SyncRequestState(row["state"]),
        version=int(row["version"]), fingerprint=row["fingerprint"],
        payload=bytes(row["payload"]), created_at=row["created_at"],
        updated_at=row["updated_at"], sent_at=row["sent_at"],
        acknowledged_at=row["acknowledged_at"], partition=row["partition"],
        offset=row["offset"],
        errors=errors_of(row["errors"]),
        mdm_us_id=row["mdm_us_id"], sends=int(row["sends"]), retries=int(row["retries"]),
        note=row["note"])


def errors_of(document: str) -> tuple[SyncError, ...]:
    if document == "[]":  # most requests: no need to parse
        return ()
    return tuple(SyncError.model_validate(item) for item in json.loads(document))


def by_id(connection: Connection, request_id: str) -> SyncRequest | None:
    row = connection.execute(select(sync_requests).where(
        sync_requests.c.id == request_id)).mappings().first()
    return None if row is None else request_of(row)


def by_ids(connection: Connection, request_ids: Sequence[str], *,
           lock: bool = False) -> dict[str, SyncRequest]:
    """The requests with these ids (``lock``: and hold their rows until the end of the
    transaction, on databases with row locks)."""
    found: dict[str, SyncRequest] = {}
    for part in in_batches(list(dict.fromkeys(request_ids))):
        query = select(sync_requests).where(sync_requests.c.id.in_(part))
        if lock:  # in id order: writers locking overlapping batches queue, not deadlock
            query = query.order_by(sync_requests.c.id).with_for_update()
        found.update((row["id"], request_of(row))
                     for row in connection.execute(query).mappings())
    return found


def queued(connection: Connection, limit: int) -> list[QueuedRequest]:
    """Up to ``limit`` pending requests in queue order, as the relay publishes them. Read
    through the driver: SQLAlchemy's building of the statement and of each row cost more than
    the database's read, and the relay reads a batch many times a second."""
    # The head of the queue from the (state, seq) index: a relay that fell behind would
    # otherwise read and sort the whole queue for every batch, just when it has most to do.
    in_index_order(connection)
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(_queued_sql(connection.dialect.paramstyle),
                       (SyncRequestState.PENDING.value, limit))
        found = cursor.fetchall()
    finally:
        cursor.close()
    return [QueuedRequest(id_, entity_type, entity_id, int(version), fingerprint,
                          bytes(payload))
            for id_, entity_type, entity_id, version, fingerprint, payload in found]


@functools.cache
def _queued_sql(paramstyle: str) -> str:
    mark = "?" if paramstyle == "qmark" else "%s"
    return ("SELECT id, entity_type, entity_id, version, fingerprint, payload"
            f" FROM {sync_requests.name} WHERE state = {mark} ORDER BY seq LIMIT {mark}")


def _columns_of_ids(connection: Connection, columns: Sequence[str], request_ids: Sequence[str],
                    lock: bool) -> list[tuple[Any, ...]]:
    """``columns`` of the requests with these ids; ``lock``: and hold their rows until the end
    of the transaction, on databases with row locks. Every batch of the relay and of the
    acknowledgements reads one, through the driver (:func:`~sync.storage.bulk_sql.select_in`:
    on PostgreSQL one probe of the primary key per id, so no plan the prepared statement keeps
    can scan every request)."""
    return select_in(connection, sync_requests, columns, "id", request_ids, lock=lock)


class _AmongMany:
    """A select of the rows whose ``column`` is one of a list of values (``name``), read for
    every batch of answers. On SQLite rendered once per list length and read through the
    driver (:class:`~sync.storage.bulk_sql.RawSelect`; SQLAlchemy renders an expanding IN list
    anew for every execution). On PostgreSQL the list is one array parameter: with ``probe``
    each value is looked up by a lateral subquery (``OFFSET 0``: an index probe per value,
    the only plan, also for a plan the prepared statement keeps), for a column that an index
    finds together with the select's own equalities (the To Dos' drill kind and id); without
    it ``column = ANY(...)``, for a read that goes through another index on purpose. For text
    columns read as the driver gives them. ``sqlite``: the SQLite statement written out, for
    what SQLAlchemy cannot say (an index to use), with the same expanding list parameter."""

    def __init__(self, build: Callable[[ColumnElement[bool]], Select[Any]],
                 column: ColumnElement[Any], name: str, *, probe: bool = False,
                 sqlite: TextualSelect | None = None) -> None:
        self.name = name
        self.raw = RawSelect(build(column.in_(bindparam(name, expanding=True)))
                             if sqlite is None else sqlite, name)
        if probe:
            wanted = probed_keys((name, "key"))
            self.array = each_probed(wanted, build(column == wanted.c.key))
        else:
            self.array = build(column == any_(bindparam(name, type_=ARRAY(column.type))))

    def rows(self, connection: Connection, values: Sequence[Any]) -> list[tuple[Any, ...]]:
        if connection.dialect.name == "postgresql":
            return [tuple(row) for row in connection.execute(
                self.array, {self.name: list(values)})]
        return self.raw.rows(connection, values)


# What an acknowledgement reads of its request: no payload, no bookkeeping columns.
_STATUS_COLUMNS = ("id", "seq", "entity_type", "entity_id", "state", "version", "fingerprint",
                   "sent_at", "errors", "retries")


def _status_of(row: Any) -> RequestStatus:
    (id_, seq, entity_type, entity_id, state, version, fingerprint, sent_at, errors,
     retries) = row
    return RequestStatus(
        id=id_, seq=int(seq), entity_type=entity_type, entity_id=entity_id,
        state=SyncRequestState(state), version=int(version), fingerprint=fingerprint,
        sent_at=sent_at, errors=errors_of(errors), retries=int(retries))


def statuses_of(connection: Connection, request_ids: Sequence[str], *,
                lock: bool = False) -> dict[str, RequestStatus]:
    """The requests with these ids without their payloads (``lock`` as in :func:`by_ids`)."""
    return {status.id: status for status in map(
        _status_of, _columns_of_ids(connection, _STATUS_COLUMNS, request_ids, lock))}


def later_statuses(connection: Connection, request: RequestFacts) -> list[RequestStatus]:
    """The entity's requests with a higher version than ``request``, without their payloads,
    in queue order (through the entities' index)."""
    c = sync_requests.c
    return [_status_of(row) for row in connection.execute(
        select(*(c[name] for name in _STATUS_COLUMNS)).where(
            c.entity_type == request.entity_type, c.entity_id == request.entity_id,
            c.version > request.version).order_by(c.seq)).all()]


def states_of(connection: Connection, request_ids: Sequence[str], *,
              lock: bool = False) -> dict[str, tuple[int, SyncRequestState]]:
    """(version, state) of the requests with these ids (``lock`` as in :func:`by_ids`)."""
    return {id_: (int(version), SyncRequestState(state)) for id_, version, state
            in _columns_of_ids(connection, ("id", "version", "state"), request_ids, lock)}


def pending_of(connection: Connection, entity_type: str, entity_id: str) -> SyncRequest | None:
    c = sync_requests.c
    row = connection.execute(select(sync_requests).where(
        c.entity_type == entity_type, c.entity_id == entity_id,
        c.state == SyncRequestState.PENDING.value)).mappings().first()
    return None if row is None else request_of(row)


def _key_filter(columns: Any, keys: Sequence[EntityKey]) -> Any:
    by_type: dict[str, list[str]] = {}
    for entity_type, entity_id in keys:
        by_type.setdefault(entity_type, []).append(entity_id)
    return or_(*(and_(columns.entity_type == entity_type, columns.entity_id.in_(ids))
                 for entity_type, ids in by_type.items()))


@dataclass(frozen=True)
class QueueEntry:
    """What the purge reads of a request: its place in the queue, state and times."""

    seq: int
    state: str
    created_at: dt.datetime
    updated_at: dt.datetime


def queue_after(connection: Connection, after_seq: int, limit: int) -> list[QueueEntry]:
    """Up to ``limit`` requests after queue position ``after_seq``, in queue order (through
    the primary key)."""
    c = sync_requests.c
    return [QueueEntry(int(seq), state, created_at, updated_at)
            for seq, state, created_at, updated_at in connection.execute(
                select(c.seq, c.state, c.created_at, c.updated_at).where(c.seq > after_seq)
                .order_by(c.seq).limit(limit))]


def remove_settled(connection: Connection, seqs: Sequence[int], before: dt.datetime) -> int:
    """Delete the requests at these queue positions that are still settled before ``before``
    (checked again: on PostgreSQL another transaction may have changed one since it was
    read); how many were deleted."""
    c = sync_requests.c
    removed = 0
    for part in in_batches(list(seqs)):
        removed += connection.execute(sync_requests.delete().where(
            one_of(connection, c.seq, "seqs"),
            c.state.in_(sorted(state.value for state in SETTLED_STATES)),
            c.updated_at < before), {"seqs": part}).rowcount
    return removed


def in_state_after(connection: Connection, state: SyncRequestState, after_seq: int,
                   limit: int, *, sent_by: dt.datetime | None = None) -> list[SyncRequest]:
    """Up to ``limit`` requests in ``state`` after queue position ``after_seq`` (``sent_by``:
    only those sent at or before it), in queue order, through the ``(state, seq)`` index: the
    chunks of a run that works through every request in a state."""
    c = sync_requests.c
    query = select(sync_requests).where(c.state == state.value, c.seq > after_seq)
    if sent_by is not None:
        query = query.where(c.sent_at <= sent_by)
    return [request_of(row) for row in connection.execute(
        query.order_by(c.seq).limit(limit)).mappings()]


def pending_of_many(connection: Connection, keys: Sequence[EntityKey], *,
                    lock: bool = False) -> dict[EntityKey, SyncRequest]:
    """The ``PENDING`` request of each entity that has one (``lock``: rows held until the end
    of the transaction where the database has row locks)."""
    c = sync_requests.c
    found: dict[EntityKey, SyncRequest] = {}
    if connection.dialect.name == "postgresql":
        for row in _keyed_rows(connection, "pending", keys, lock):
            request = request_of(row)
            found[(request.entity_type, request.entity_id)] = request
        return found
    for part in in_batches(list(keys), _KEY_BATCH):
        # ``state || ''``: the entities' index, not the (state, seq) one. Given a list of
        # entities, SQLite's planner would otherwise read every pending request of the queue
        # by state, and the cost of a unit would grow with the queue.
        query = select(sync_requests).where(
            c.state.concat("") == SyncRequestState.PENDING.value, _key_filter(c, part))
        if lock:  # in entity order, for the same reason
            query = query.order_by(c.entity_type, c.entity_id).with_for_update()
        rows = connection.execute(query).mappings()
        for row in rows:
            request = request_of(row)
            found[(request.entity_type, request.entity_id)] = request
    return found


def sync_entities_of_many(connection: Connection, keys: Sequence[EntityKey], *,
                          lock: bool = False) -> dict[EntityKey, RowMapping]:
    """The ``ccb_sync_entities`` row of each entity that has one (``lock`` as above)."""
    found: dict[EntityKey, RowMapping] = {}
    if connection.dialect.name == "postgresql":
        for row in _keyed_rows(connection, "entities", keys, lock):
            found[(row["entity_type"], row["entity_id"])] = row
        return found
    for part in in_batches(list(keys), _KEY_BATCH):
        query = select(sync_entities).where(_key_filter(sync_entities.c, part))
        if lock:
            query = query.order_by(sync_entities.c.entity_type,
                                   sync_entities.c.entity_id).with_for_update()
        for row in connection.execute(query).mappings():
            found[(row["entity_type"], row["entity_id"])] = row
    return found


@functools.cache
def _keyed_lookup(kind: str, lock: bool) -> Select[Any]:
    """PostgreSQL: the row of each (entity type, entity id) of two array parameters, looked up
    one key at a time through the table's key index, in entity order.

    Written as a lateral subquery with ``LIMIT 1`` (at most one row per key: the primary key of
    ``ccb_sync_entities``, the unique pending index of ``ccb_sync_requests``) because that
    cannot be turned into a join: its plan is one index probe per key whatever the planner
    believes about the table. As a plain ``entity_id = ANY(...)`` the planner relied on the
    table's statistics, and while they lagged behind a table filling up (a long batch on a
    fresh table, before autovacuum's next analyze) it read every row of the entity type for
    every unit: the cost of a unit grew with the table. The keys are sorted in a subquery the
    planner keeps (``OFFSET 0``), so rows are locked in entity order as before."""
    if kind == "pending":
        table = sync_requests
        condition: list[ColumnElement[bool]] = [
            sync_requests.c.state == SyncRequestState.PENDING.value]
    else:
        table, condition = sync_entities, []
    ordered = probed_keys(("entity_types", "entity_type"), ("entity_ids", "entity_id"))
    return each_probed(ordered, select(table).where(
        table.c.entity_type == ordered.c.entity_type,
        table.c.entity_id == ordered.c.entity_id, *condition), one=True, lock=lock)


def _keyed_rows(connection: Connection, kind: str, keys: Sequence[EntityKey],
                lock: bool) -> list[RowMapping]:
    if not keys:
        return []
    return list(connection.execute(_keyed_lookup(kind, lock), {
        "entity_types": [entity_type for entity_type, _ in keys],
        "entity_ids": [entity_id for _, entity_id in keys]}).mappings())


# --- writing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionUpdate:
    """The entity's snapshot version moves from ``read`` to ``read + 1``."""

    entity_type: str
    entity_id: str
    read: int


@dataclass(frozen=True)
class VersionInsert:
    """The entity's first snapshot version."""

    entity_type: str
    entity_id: str
    version: int


@dataclass(frozen=True)
class RequestUpdate:
    """``values`` written on ``request``'s row if it is still as read."""

    request: RequestFacts
    values: dict[str, Any]


@dataclass(frozen=True)
class RequestInsert:
    values: dict[str, Any]


@dataclass(frozen=True)
class SentFingerprint:
    """The snapshot handed to the relay, for comparing the entity's next change with."""

    entity_type: str
    entity_id: str
    fingerprint: str


Operation = VersionUpdate | VersionInsert | RequestUpdate | RequestInsert | SentFingerprint


def row_values(values: dict[str, Any]) -> dict[str, Any]:
    """Values as the columns store them (``errors`` as its JSON document)."""
    if "errors" in values and not isinstance(values["errors"], str):
        errors: Iterable[SyncError] = values["errors"]
        return {**values, "errors": errors_document(errors)}
    return values


def errors_document(errors: Iterable[SyncError]) -> str:
    """``errors`` as the ``errors`` column stores them."""
    return json.dumps([error.model_dump() for error in errors]) if errors else "[]"


def write(connection: Connection, operations: Sequence[Operation]) -> None:
    """Execute ``operations``: versions first, then request updates, then inserts in order."""
    # The operations by kind in one pass (a batch's thousands of them).
    by_kind: dict[type[Operation], list[Any]] = {}
    for op in operations:
        by_kind.setdefault(type(op), []).append(op)
    _update_versions(connection, by_kind.get(VersionUpdate, []))
    firsts: list[VersionInsert] = by_kind.get(VersionInsert, [])
    if firsts:
        insert_many(connection, sync_entities, [
            {"entity_type": op.entity_type, "entity_id": op.entity_id,
             "last_version": op.version} for op in firsts])
    update_requests(connection, by_kind.get(RequestUpdate, []))
    inserts = [op.values for op in by_kind.get(RequestInsert, [])]
    if inserts:
        # One executemany per set of columns (every new request carries the same ones), in
        # publishing order: the queue's sequence numbers follow it.
        if all(values.keys() == inserts[0].keys() for values in inserts):
            insert_many(connection, sync_requests, inserts)
        else:
            connection.execute(insert(sync_requests), inserts)
    update_many(connection, sync_entities, ("sent_fingerprint",), ("entity_type", "entity_id"), [
        {"set:sent_fingerprint": op.fingerprint, "where:entity_type": op.entity_type,
         "where:entity_id": op.entity_id}
        for op in by_kind.get(SentFingerprint, [])])


def _update_versions(connection: Connection, updates: list[VersionUpdate]) -> None:
    if not updates:
        return
    e = sync_entities.c
    result = connection.execute(update(sync_entities).where(
        e.entity_type == bindparam(_W_TYPE), e.entity_id == bindparam(_W_ENTITY),
        e.last_version == bindparam(_W_VERSION)), [
        {_W_TYPE: op.entity_type, _W_ENTITY: op.entity_id, _W_VERSION: op.read,
         "last_version": op.read + 1} for op in updates])
    if result.rowcount == len(updates):
        return
    stored = sync_entities_of_many(connection, [(op.entity_type, op.entity_id)
                                                for op in updates])
    for op in updates:
        row = stored.get((op.entity_type, op.entity_id))
        if row is None or int(row["last_version"]) != op.read + 1:
            break
    raise ConcurrentUpdateError(op.entity_id, f"{op.entity_type} sync version",
                                version_read=op.read)


# A request's row as read: what every update of it is conditional on.
_REQUEST_AS_READ = ("id", "version", "state")


def update_requests(connection: Connection, updates: Sequence[RequestUpdate]) -> None:
    """Conditional updates of request rows, one ``executemany`` per set of columns written."""
    # A batch of answers writes thousands of rows of one or two shapes: each shape's columns
    # are sorted once, and each row is built in one pass (as row_values would convert it).
    shapes: dict[tuple[str, ...], list[RequestUpdate]] = {}
    sorted_columns: dict[tuple[str, ...], tuple[str, ...]] = {}
    for op in updates:
        given = tuple(op.values)
        columns = sorted_columns.get(given)
        if columns is None:
            columns = sorted_columns[given] = tuple(sorted(given))
        shapes.setdefault(columns, []).append(op)
    for columns, ops in shapes.items():
        pairs = [(f"set:{name}", name) for name in columns]
        with_errors = "errors" in columns
        rows = []
        for op in ops:
            values = op.values
            row = {key: values[name] for key, name in pairs}
            if with_errors and not isinstance(row["set:errors"], str):
                row["set:errors"] = errors_document(row["set:errors"])
            request = op.request
            row["where:id"] = request.id
            row["where:version"] = request.version
            row["where:state"] = request.state.value
            rows.append(row)
        count = update_many(connection, sync_requests, columns, _REQUEST_AS_READ, rows)
        if count != len(ops):
            _raise_first_lost(connection, [
                (op.request.id, op.request.version,
                 (op.values.get("version", op.request.version),
                  str(op.values.get("state", op.request.state.value)))) for op in ops])


def _raise_first_lost(connection: Connection,
                      written: Sequence[tuple[str, int, tuple[int, str]]]) -> None:
    """Name the first request whose row was not as read (so not written now); ``written``
    gives each request's id, the version read and the (version, state) the write gave it."""
    stored = states_of(connection, [request_id for request_id, _, _ in written])

    def lost(request_id: str, expected: tuple[int, str]) -> bool:
        now = stored.get(request_id)
        return now is None or (now[0], now[1].value) != expected

    request_id, version_read, _ = next(
        (entry for entry in written if lost(entry[0], entry[2])), written[-1])
    raise ConcurrentUpdateError(request_id, "sync request", version_read=version_read)


def mark_requests_sent(connection: Connection,
                       sent: Sequence[tuple[QueuedRequest, int, int]], at: dt.datetime) -> None:
    """``SENT`` at ``at`` with their partition and offset (one more send): requests read as
    ``PENDING`` at their version in this transaction (under row lock where the database has
    them)."""
    pending, sent_state = SyncRequestState.PENDING.value, SyncRequestState.SENT.value
    count = update_many(
        connection, sync_requests, ("state", "sent_at", "updated_at", "partition", "offset"),
        _REQUEST_AS_READ, [
            {"set:state": sent_state, "set:sent_at": at, "set:updated_at": at,
             "set:partition": partition, "set:offset": offset, "where:id": request.id,
             "where:version": request.version, "where:state": pending}
            for request, partition, offset in sent], incremented=("sends",))
    if count != len(sent):
        _raise_first_lost(connection, [(request.id, request.version,
                                        (request.version, sent_state))
                                       for request, _, _ in sent])


# The entities among a list of ids (``entity_ids``) with a request in ERROR, for
# :func:`supersede_errors`: read for every batch of answers, so rendered once per list length.
# A probe per entity id of the partial index of the requests in ERROR. The state is written as
# a literal: only then may either database use a partial index (a bound value might be any
# state, as far as a statement prepared once knows). Through the (state, seq) index instead,
# each batch read every request in ERROR: after a wave of 100,000 rejections the
# acknowledgements were 51 times slower on PostgreSQL (each row's entity id compared with the
# whole list of the batch's) and 4 to 5 times on SQLite (docs/performance.md).
_IN_ERROR = sync_requests.c.state == literal_column(f"'{SyncRequestState.ERROR.value}'")
_ERRED_ENTITIES = _AmongMany(lambda among: select(
    sync_requests.c.entity_type, sync_requests.c.entity_id).where(_IN_ERROR, among),
    sync_requests.c.entity_id, "entity_ids", probe=True,
    # SQLite is told the index (SQLAlchemy cannot say ``INDEXED BY``): left to its default
    # estimates, its planner prefers the (state, seq) index.
    sqlite=text(f"SELECT entity_type, entity_id FROM {sync_requests.name} "
                f"INDEXED BY {ERRORS_INDEX} WHERE state = '{SyncRequestState.ERROR.value}' "
                "AND entity_id IN :entity_ids").bindparams(
        bindparam("entity_ids", expanding=True)).columns(
        sync_requests.c.entity_type, sync_requests.c.entity_id))


def supersede_errors(connection: Connection, synchronized: Sequence[RequestFacts],
                     now: dt.datetime) -> None:
    """Earlier requests of each entity left in ERROR are settled by a later one synchronizing:
    MDM now holds a newer state, so they no longer need a resend."""
    if not synchronized:
        return
    c = sync_requests.c
    # Requests in ERROR are few (each raised a To Do): find the entities that have any with one
    # read through the state index, and update only theirs rather than look for each entity.
    erred: set[tuple[str, str]] = set()
    for part in in_batches(list({request.entity_id for request in synchronized})):
        erred.update((str(row[0]), str(row[1])) for row in _ERRED_ENTITIES.rows(connection, part))
    synchronized = [request for request in synchronized
                    if (request.entity_type, request.entity_id) in erred]
    if not synchronized:
        return
    connection.execute(update(sync_requests).where(
        c.entity_type == bindparam(_W_TYPE), c.entity_id == bindparam(_W_ENTITY),
        c.state == SyncRequestState.ERROR.value, c.seq < bindparam("before_seq")).values(
        state=SyncRequestState.DISCARDED.value, updated_at=now,
        note=bindparam("superseded_note")), [
        {_W_TYPE: request.entity_type, _W_ENTITY: request.entity_id,
         "before_seq": request.seq,
         "superseded_note": f"superseded by {request.id}, synchronized as version "
                            f"{request.version}"} for request in synchronized])


# --- the acknowledgement consumer's positions -------------------------------------------------


def record_ack_positions(connection: Connection, topic: str,
                         positions: Mapping[int, int]) -> None:
    """Per partition of ``topic``, the offset of the last answer applied: one upsert for all.
    A position may move back: a topic created again (or the in-process bus of a new process)
    starts its offsets anew, and a position kept ahead of them would hide every later loss;
    the worst a position set back does is have answers read again, which is harmless."""
    if not positions:
        return
    sql, positional = _ack_position_upsert_sql(connection.dialect)
    given = [{"topic": topic, "partition": partition, "offset": offset}
             for partition, offset in sorted(positions.items())]
    # Through the driver: executing the built statement still cost SQLAlchemy's handling of a
    # statement and its parameters, more than the upsert of a row or two itself.
    connection.exec_driver_sql(sql, [tuple(row[name] for name in positional) for row in given]
                               if positional is not None else given)


def _ack_position_upsert(dialect: str) -> Insert:
    upsert = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(ack_positions)
    c = ack_positions.c
    return upsert.on_conflict_do_update(index_elements=[c.topic, c.partition],
                                        set_={"offset": upsert.excluded.offset})


@functools.cache
def _ack_position_upsert_sql(dialect: Dialect) -> tuple[str, tuple[str, ...] | None]:
    """The upsert's SQL as SQLAlchemy renders it for ``dialect``, and the order of its
    parameters when they are positional (None: by name); rendered once, every batch of answers
    executes it. Its columns (text and integers) need no conversion of their values."""
    compiled = _ack_position_upsert(dialect.name).compile(dialect=dialect)
    order = compiled.positiontup
    return compiled.string, tuple(order) if order is not None else None


def ack_positions_of(connection: Connection, topic: str) -> dict[int, int]:
    """Per partition of ``topic`` the store has recorded, the offset of the last answer
    applied."""
    c = ack_positions.c
    return {int(partition): int(offset) for partition, offset in connection.execute(
        select(c.partition, c.offset).where(c.topic == topic)).all()}


class SyncTodoView(SqlCcbView):
    """A view that holds the open sync error and timeout To Dos of the requests' drill keys
    (one query), for acknowledging many requests without a read per request."""

    def __init__(self, view: SqlCcbView, admin: AdminConfig,
                 requests: Sequence[RequestFacts]) -> None:
        super().__init__(view.connection, view.written)
        self._types = frozenset(sync_todo_types(admin))
        keys: dict[str, list[str]] = {}
        for request in requests:
            kind, key = drill_target(request)
            keys.setdefault(kind, []).append(key)
        self._keys = {(kind, key) for kind, ids in keys.items() for key in ids}
        self._open: dict[tuple[str, str, str], ToDoEntry] = {}
        t = todos.c
        for kind, ids in keys.items():
            for part in in_batches(ids):
                # Most keys have none: which have one is read first, without building the
                # statement and its IN list anew; the entries only of those.
                having = list(dict.fromkeys(drill_id for drill_id, in _open_sync_todo_keys(
                    tuple(sorted(self._types)), kind).rows(view.connection, part)))
                if not having:
                    continue
                for entry in self._many(TODOS, t.todo_type.in_(self._types),
                                        t.drill_kind == kind,
                                        one_of(view.connection, t.drill_id, "drill_ids"),
                                        t.status != ToDoStatus.COMPLETE.value,
                                        params={"drill_ids": having}):
                    # By id, like the single read: the first open entry of a type and key.
                    self._open.setdefault(
                        (entry.todo_type, entry.drill_key.kind, entry.drill_key.id), entry)
        self._keys_with_open = {(kind, key) for _, kind, key in self._open}

    def may_have_open(self, request: RequestFacts) -> bool:
        """Whether the request's drill key may have an open sync To Do: False only when this
        view read that it has none, and then resolving its sync To Dos finds nothing to do (most
        answers: an entity synchronized without trouble)."""
        target = drill_target(request)
        return target not in self._keys or target in self._keys_with_open

    def open_todo(self, todo_type: str, drill_key: DrillKey) -> ToDoEntry | None:
        if todo_type in self._types and (drill_key.kind, drill_key.id) in self._keys:
            return self._open.get((todo_type, drill_key.kind, drill_key.id))
        return super().open_todo(todo_type, drill_key)


@functools.cache
def _open_sync_todo_keys(types: tuple[str, ...], kind: str) -> _AmongMany:
    """The drill ids of ``kind`` among a list (``drill_ids``) that have an unfinished To Do of
    one of ``types``; built once per configuration and kind."""
    t = todos.c
    return _AmongMany(lambda among: select(t.drill_id).where(
        or_(*(t.todo_type == todo_type for todo_type in types)), t.drill_kind == kind, among,
        t.status != ToDoStatus.COMPLETE.value), t.drill_id, "drill_ids", probe=True)
