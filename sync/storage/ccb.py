"""The CCB store: SQLAlchemy over SQLite (default, a file) or PostgreSQL, chosen by URL.

One command is one unit of work is one transaction: :meth:`SqlCcbStore.execute` opens it, hands
the command a :class:`~sync.storage.ccb_view.SqlCcbView` and an id source bound to it, persists
the :class:`~sync.ccb.changes.Changes` the command returns (a few statements per table,
:mod:`sync.storage.ccb_persist`), records every ``changed`` entry in ``entity_changes`` (one
insert), runs the registered change hooks (they get a view that knows the entities just
written), and commits. Any exception rolls all of it back.

Concurrency is optimistic: an updated entity carries ``version = version read + 1``; the
versions stored are read with ``SELECT ... FOR UPDATE`` before the update (``UPDATE ... WHERE id
= :id AND version = :version_read``, all entities of a table in one statement). A stored version
other than the one read means another unit of work won, and
:class:`~sync.ccb.errors.ConcurrentUpdateError` rolls this one back. On PostgreSQL (read
committed) the losing unit waits for the winner's row lock and then reads its version. SQLite
has a single writer: a writing unit of work starts with ``BEGIN IMMEDIATE``, so units are
serialized and never read a version that changes under them (the version check still guards
against stale input such as a version read in an earlier unit); the writers take the lock in
turns (:mod:`sync.storage.writer_turns`), so a batch run's units do not starve the relay's.
SQLite runs in write-ahead-log mode with ``synchronous = NORMAL``: a commit does not wait for
the disk, and a power loss may undo the last commits but never corrupts the database.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    event,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from sync.ccb.changes import Changes
from sync.ccb.errors import ConcurrentUpdateError
from sync.ccb.ports import IdSource
from sync.clock import Clock, SystemClock
from sync.storage import ccb_schema as schema
from sync.storage.bulk_sql import insert_many
from sync.storage.ccb_persist import existing_ids, persist
from sync.storage.ccb_schema import EntityTable
from sync.storage.ccb_view import SqlCcbView
from sync.storage.common import (
    create_engine_for,
    create_missing_schema,
    is_sqlite,
    write_transaction,
)

T = TypeVar("T")

class CcbStoreError(Exception):
    """The database refused a unit of work for a reason other than a concurrent update
    (e.g. a reference to an entity that does not exist); nothing was written."""


@dataclass(frozen=True)
class RecordedChange:
    """One ``entity_changes`` row: this entity changed in unit of work ``unit_id``."""

    seq: int
    unit_id: str
    entity_type: str
    entity_id: str
    changed_at: dt.datetime


ChangeHook = Callable[[Connection, SqlCcbView, Sequence[RecordedChange]], None]
"""Runs inside the unit of work's transaction after its changes are written (the sync outbox
registers one to turn changes into sync requests atomically with them)."""


_COUNTERS = schema.id_sequences
# Statements built once: SQLAlchemy then reuses their compiled form on every call.
_ADVANCE = (update(_COUNTERS).where(_COUNTERS.c.kind == bindparam("counter_kind"))
            .values(next_value=_COUNTERS.c.next_value + bindparam("step"))
            .returning(_COUNTERS.c.next_value))
_SET = (update(_COUNTERS).where(_COUNTERS.c.kind == bindparam("counter_kind"))
        .values(next_value=bindparam("value")))
# A unit drawing many ids of one kind (a chunk of stop requests, each recording a contact)
# draws blocks of 1, 2, 4, ... up to this size rather than one id per statement.
MAX_BLOCK = 256


class SqlIdSource:
    """Ids ``<KIND>-<n>`` from a counter per kind, in the unit of work's transaction; an id
    already taken (e.g. loaded from a master data file) is skipped.

    A unit that asks for ids of a kind again draws them in growing blocks, and
    :meth:`give_back` returns the ids of the last block it did not use before the unit commits.
    The counter's row stays locked by the unit's update until then (PostgreSQL's row lock,
    SQLite's single writer), so nobody can have drawn past them: the ids a unit hands out, and
    the counter it leaves, are exactly those of drawing one id at a time."""

    _TABLES: ClassVar[dict[str, EntityTable]] = {
        "SA": schema.SAS, "LINK": schema.LINKS, "FA": schema.FIELD_ACTIVITIES,
        "TODO": schema.TODOS, "CONTACT": schema.CONTACTS, "READ": schema.READS,
        "PERSON": schema.PERSONS, "ACCOUNT": schema.ACCOUNTS, "PREMISE": schema.PREMISES,
        "SP": schema.SERVICE_POINTS, "LA": schema.LANDLORD_AGREEMENTS,
        "FT": schema.FINANCIAL_TRANSACTIONS,
    }

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._spare: dict[str, list[str]] = {}  # drawn, not handed out yet; next one last
        self._block: dict[str, int] = {}

    def next_id(self, kind: str) -> str:
        spare = self._spare.get(kind)
        if not spare:
            size = self._block.get(kind, 1)
            self._block[kind] = min(2 * size, MAX_BLOCK)
            spare = self._spare[kind] = self._draw(kind, size)[::-1]
        return spare.pop()

    def next_ids(self, kind: str, count: int) -> list[str]:
        """``count`` new ids at once: the same ids, in the same order, as ``count`` calls of
        :meth:`next_id`, from one counter update (plus one more per round of taken ids)."""
        spare = self._spare.get(kind, [])
        ids = [spare.pop() for _ in range(min(count, len(spare)))]
        if len(ids) < count:
            ids.extend(self._draw(kind, count - len(ids)))
        return ids

    def give_back(self) -> None:
        """Return the drawn ids not handed out to their counters (before the unit commits)."""
        for kind, spare in self._spare.items():
            if spare:
                lowest = min(int(candidate.rsplit("-", 1)[1]) for candidate in spare)
                self.connection.execute(_SET, {"counter_kind": kind, "value": lowest - 1})
                spare.clear()

    def _draw(self, kind: str, count: int) -> list[str]:
        ids: list[str] = []
        table = self._TABLES.get(kind)
        while len(ids) < count:
            wanted = count - len(ids)
            last = self._advance(kind, wanted)
            candidates = [f"{kind}-{value}" for value in range(last - wanted + 1, last + 1)]
            taken = existing_ids(self.connection, table, candidates) if table else set()
            ids.extend(candidate for candidate in candidates if candidate not in taken)
        return ids

    def _advance(self, kind: str, step: int) -> int:
        """Move the counter of ``kind`` on by ``step``; returns its new value."""
        parameters = {"counter_kind": kind, "step": step}
        value = self.connection.execute(_ADVANCE, parameters).scalar()
        if value is None:
            # The kind's first id: two units may both find no counter. Each inserts it unless
            # it is there (the second waits for the first's insert to commit, then inserts
            # nothing), then both move it on in turn: no unit fails on the counter's key.
            dialect = self.connection.dialect.name
            create = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(_COUNTERS)
            self.connection.execute(create.values(kind=kind, next_value=0)
                                    .on_conflict_do_nothing(index_elements=[_COUNTERS.c.kind]))
            value = self.connection.execute(_ADVANCE, parameters).scalar_one()
        return int(value)


class SqlCcbStore:
    """CCB state in a SQL database; see the module documentation for the contract."""

    def __init__(self, url: str, clock: Clock | None = None,
                 engine: Engine | None = None) -> None:
        self.url = url
        self.engine = engine if engine is not None else create_engine_for(url)
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._hooks: list[ChangeHook] = []
        if is_sqlite(self.engine):
            event.listen(self.engine, "connect", _sqlite_commit_without_fsync)

    def create_schema(self) -> None:
        """Create the tables and indexes that do not exist yet (idempotent)."""
        create_missing_schema(self.engine, schema.metadata)

    def add_change_hook(self, hook: ChangeHook) -> None:
        self._hooks.append(hook)

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _transaction(self, writes: bool) -> Iterator[Connection]:
        """A transaction that commits on success (``writes``) or always rolls back."""
        if writes:
            # SQLite: the write lock up front, in turns (see the module documentation).
            with write_transaction(self.engine) as connection:
                yield connection
            return
        with self.engine.connect() as connection:
            try:
                yield connection
            finally:
                connection.rollback()

    def execute(self, fn: Callable[[SqlCcbView, IdSource], Changes]) -> Changes:
        """Run ``fn(view, ids)`` and persist what it returns, all in one transaction."""
        try:
            with self._transaction(writes=True) as connection:
                ids = SqlIdSource(connection)
                changes = fn(SqlCcbView(connection), ids)
                ids.give_back()
                persist(connection, changes)
                recorded = self._record_changes(connection, changes)
                if self._hooks:
                    # The hooks read the state just written; the view knows the entities of
                    # ``changes`` (they are what the database now holds) without reading them.
                    written = SqlCcbView(connection, written=changes)
                    for hook in self._hooks:
                        hook(connection, written, recorded)
            return changes
        except IntegrityError as error:
            raise _translate(error) from None

    def read(self, fn: Callable[[SqlCcbView], T]) -> T:
        """Run a read-only ``fn`` on a consistent view (nothing it does is written)."""
        with self._transaction(writes=False) as connection:
            return fn(SqlCcbView(connection))

    def _record_changes(self, connection: Connection,
                        changes: Changes) -> list[RecordedChange]:
        if not changes.changed:
            return []
        unit_id = str(uuid.uuid4())
        changed_at = self.clock.now()
        table = schema.entity_changes
        # One insert for the whole unit, then one read of the sequence numbers it was given
        # (an insert with RETURNING in parameter order runs row by row on SQLite). The unit id
        # is new and each entry appears once in ``changes.changed``, so the pair finds its row.
        insert_many(connection, table, [
            {"unit_id": unit_id, "entity_type": entity_type, "entity_id": entity_id,
             "changed_at": changed_at} for entity_type, entity_id in changes.changed])
        seqs = {(row[1], row[2]): int(row[0]) for row in connection.execute(
            select(table.c.seq, table.c.entity_type, table.c.entity_id)
            .where(table.c.unit_id == unit_id))}
        return [RecordedChange(seqs[(entity_type, entity_id)], unit_id, entity_type, entity_id,
                               changed_at) for entity_type, entity_id in changes.changed]

    def entity_changes(self, after_seq: int = 0, limit: int = 1000) -> list[RecordedChange]:
        """Recorded changes with a sequence number above ``after_seq``, oldest first."""
        table = schema.entity_changes
        with self._transaction(writes=False) as connection:
            rows = connection.execute(select(table).where(table.c.seq > after_seq)
                                      .order_by(table.c.seq).limit(limit)).mappings().all()
        return [RecordedChange(int(row["seq"]), row["unit_id"], row["entity_type"],
                               row["entity_id"], row["changed_at"]) for row in rows]

    def table_counts(self) -> dict[str, int]:
        with self._transaction(writes=False) as connection:
            return {table.name: int(connection.execute(
                select(func.count()).select_from(table)).scalar_one())
                for table in schema.metadata.tables.values()}


def _sqlite_commit_without_fsync(dbapi_connection: Any, _record: Any) -> None:
    """In write-ahead-log mode, ``synchronous = NORMAL`` syncs the log at checkpoints rather
    than at every commit: a power loss may undo the last commits, never corrupt the database,
    and a batch's thousands of commits no longer each wait for the disk."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _translate(error: IntegrityError) -> Exception:
    """A refused write as a concurrent update (a key taken meanwhile) or a store error."""
    message = str(error.orig).strip().splitlines()
    detail = "; ".join(line.strip() for line in message if line.strip())
    constraint = getattr(getattr(error.orig, "diag", None), "constraint_name", None) or ""
    if constraint == "ux_ccb_todos_open_per_key" or "ccb_todos.todo_type" in detail:
        return ConcurrentUpdateError("(new)", "open To Do entry for the same type and drill key")
    if constraint.endswith("_pkey") or "UNIQUE constraint failed" in detail:
        return ConcurrentUpdateError("(new)", f"row of {constraint or 'a table'}")
    return CcbStoreError(f"the database refused the change: {detail}")
