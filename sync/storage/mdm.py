"""The MDM store: SQLAlchemy on SQLite or PostgreSQL, implementing :class:`MdmStorePort`.

One :meth:`MdmStore.apply` is one transaction: read what the decision needs, decide (pure domain
code), write the new state, and record the consumed position, so that a crash leaves either both
or neither. The worker's :meth:`MdmStore.consume` adds the acknowledgement to that transaction
(the ack outbox), and :meth:`MdmStore.dead_letter` records a message that could not be consumed
with its position; both do nothing for a position that already has its answer stored.

Concurrency. The cross-US check (D2-USSPDTVAL) and the sub count (D2-VAL-SUBUS) read other
subscriptions, so two writers could each pass a check the other breaks (write skew). On
PostgreSQL an apply first takes transaction-scoped advisory locks on the keys of everything its
decision reads or writes: the subscription, its master, and every service point it links or
carries (or the one SP or contact of those commands). Locks are taken in sorted key order, so
writers do not deadlock on them, and they work for rows that do not exist yet (a new SP carried
by two racing messages), which row locks (``SELECT ... FOR UPDATE``) cannot do. Two applies
that could break each other's checks share a key (a common SP, or the master), so the second
waits and then reads the first one's committed state (READ COMMITTED gives each statement a
fresh snapshot). Serialization failures, deadlocks and unique-key collisions that remain
possible are retried from the start. On SQLite every apply starts with ``BEGIN IMMEDIATE``:
writers are serialized by the database lock.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    func,
    insert,
    select,
    text,
    true,
)
from sqlalchemy.exc import DBAPIError

from sync.config.admin import AdminConfig, load_admin_config
from sync.mdm.apply import decide_contact, decide_service_point, decide_with
from sync.mdm.commands import MdmCommand, UpsertContact, UpsertServicePoint
from sync.mdm.decision import ApplyDecision
from sync.mdm.model import (
    Contact,
    ServicePointCopy,
    UsageSubscription,
    UsStatus,
)
from sync.mdm.ports import (
    Acknowledge,
    BatchItem,
    BatchResult,
    Consumed,
    ConsumedPosition,
    ConsumeItem,
    DeadLetterRecord,
    MdmView,
    OutboxEntry,
    OutboxKind,
)
from sync.storage import mdm_schema as t
from sync.storage.bulk_sql import in_batches, update_in
from sync.storage.common import (
    create_engine_for,
    create_missing_schema,
    is_sqlite,
    write_transaction,
)
from sync.storage.mdm_batch import consume_batch_in
from sync.storage.mdm_rows import (
    load_service_points,
    load_subscriptions,
    record_position,
    write_decision,
)

T = TypeVar("T")

MAX_ATTEMPTS = 5
# serialization_failure, deadlock_detected, unique_violation (two inserts of one new row)
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01", "23505"})


def _retryable(error: DBAPIError) -> bool:
    return getattr(error.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES


def _keys_of(command: MdmCommand, position: ConsumedPosition | None) -> list[str]:
    """The lock keys of everything applying ``command`` reads to decide, or writes."""
    keys: set[str] = set()
    if position is not None:
        keys.add(_position_key(position))
    if isinstance(command, UpsertContact):
        keys.add(f"contact:{command.contact_id}")
    elif isinstance(command, UpsertServicePoint):
        keys.add(f"sp:{command.sp_id}")
    else:
        keys.add(f"us:{command.external_id}")
        if command.master_external_id is not None:
            keys.add(f"us:{command.master_external_id}")
        keys.update(f"sp:{link.sp_id}" for link in command.sp_links)
        keys.update(f"sp:{sp.sp_id}" for sp in command.service_points)
    return sorted(keys)


def _lock_keys(connection: Connection, keys: Sequence[str]) -> None:
    """PostgreSQL advisory locks held until the transaction ends, one per key, taken in the
    order given (sorted by the callers) by one statement."""
    connection.execute(text(
        # unnest scans the array in order, so the locks are taken in the keys' order.
        "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) "
        "FROM unnest(CAST(:keys AS text[])) AS k"),
        {"keys": [f"c2m-sync.mdm.{key}" for key in keys]})


class _View:
    """Reads inside the apply's transaction (the store has already locked what they cover)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def usage_subscription(self, external_id: str) -> UsageSubscription | None:
        found = load_subscriptions(
            self.connection, t.usage_subscriptions.c.external_id == external_id)
        return found[0] if found else None

    def service_points(self, sp_ids: Collection[str]) -> dict[str, ServicePointCopy]:
        if not sp_ids:
            return {}
        sps = load_service_points(self.connection, t.service_points.c.sp_id.in_(sorted(sp_ids)))
        return {sp.sp_id: sp for sp in sps}

    def service_point(self, sp_id: str) -> ServicePointCopy | None:
        found = load_service_points(self.connection, t.service_points.c.sp_id == sp_id)
        return found[0] if found else None

    def contact(self, contact_id: str) -> Contact | None:
        row = self.connection.execute(
            select(t.contacts).where(t.contacts.c.contact_id == contact_id)).mappings().first()
        return None if row is None else Contact.model_validate(dict(row))

    def count_active_subs(self, master_external_id: str, excluding: str) -> int:
        us = t.usage_subscriptions.c
        return int(self.connection.execute(
            select(func.count()).select_from(t.usage_subscriptions).where(
                us.master_external_id == master_external_id, us.external_id != excluding,
                us.status != UsStatus.INACTIVE.value)
        ).scalar_one())

    def sharing_service_points(self, sp_ids: Collection[str], us_type: str,
                               excluding: str) -> list[UsageSubscription]:
        if not sp_ids:
            return []
        us, link = t.usage_subscriptions.c, t.us_sp_links.c
        sharing = select(link.external_id).where(link.sp_id.in_(sorted(sp_ids)))
        return load_subscriptions(self.connection, and_(
            us.external_id.in_(sharing), us.us_type == us_type, us.external_id != excluding,
            us.status != UsStatus.INACTIVE.value))


class MdmStore:
    """MDM state in a database chosen by URL (``sqlite:///...`` or ``postgresql://...``)."""

    def __init__(self, url: str, admin: AdminConfig | None = None) -> None:
        self.admin = admin if admin is not None else load_admin_config()
        self.engine = create_engine_for(url)

    def create_schema(self) -> None:
        """Create the tables and indexes that do not exist yet (idempotent)."""
        create_missing_schema(self.engine, t.metadata)

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        with write_transaction(self.engine) as connection:
            yield connection

    # --- writing ---------------------------------------------------------------------------

    def apply(self, command: MdmCommand,
              position: ConsumedPosition | None = None) -> ApplyDecision:
        def work(connection: Connection) -> ApplyDecision:
            decision = self._apply_in(connection, command)
            if position is not None:
                record_position(connection, position)
            return decision

        return self._retried(_keys_of(command, position), work)

    def consume(self, position: ConsumedPosition, command: MdmCommand | None,
                acknowledge: Acknowledge) -> Consumed | None:
        """Apply, record the position and store the acknowledgement, in one transaction."""
        def work(connection: Connection) -> Consumed | None:
            if _already_consumed(connection, position):
                return None
            decision = None if command is None else self._apply_in(connection, command)
            ack = acknowledge(decision)
            connection.execute(insert(t.acknowledgements).values(
                **_source(position), sync_request_id=ack.sync_request_id,
                entity_type=ack.entity_type, entity_id=ack.entity_id, version=ack.version,
                outcome=ack.outcome, document=ack.document))
            record_position(connection, position)
            return Consumed(decision, ack)

        keys = [_position_key(position)] if command is None else _keys_of(command, position)
        return self._retried(keys, work)

    def consume_batch(self, items: Sequence[BatchItem]) -> list[BatchResult]:
        """Consume ``items`` in one transaction (see :mod:`sync.storage.mdm_batch`); on
        PostgreSQL it holds the advisory locks of every item's keys, taken in one sorted
        sweep, so it serializes with single applies exactly as they do with each other."""
        if not items:
            return []
        keys: set[str] = set()
        if not is_sqlite(self.engine):  # SQLite locks the whole database instead
            for item in items:
                command = item.command if isinstance(item, ConsumeItem) else None
                keys.update([_position_key(item.position)] if command is None
                            else _keys_of(command, item.position))
        return self._retried(sorted(keys), lambda connection: consume_batch_in(
            connection, items, lambda view, command: self._decide(view, command)))

    def dead_letter(self, position: ConsumedPosition, record: DeadLetterRecord) -> bool:
        def work(connection: Connection) -> bool:
            if _already_consumed(connection, position):
                return False
            connection.execute(insert(t.dead_letters).values(
                **_source(position), source_key=record.source_key, failure=record.failure,
                document=record.document))
            record_position(connection, position)
            return True

        return self._retried([_position_key(position)], work)

    def _retried(self, keys: Sequence[str], work: Callable[[Connection], T]) -> T:
        """``work`` in a transaction holding the advisory locks of ``keys`` (PostgreSQL),
        started again from scratch after a serialization failure, deadlock or key collision."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                with self._transaction() as connection:
                    if not is_sqlite(self.engine):
                        _lock_keys(connection, keys)
                    return work(connection)
            except DBAPIError as error:
                if attempt == MAX_ATTEMPTS or not _retryable(error):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _apply_in(self, connection: Connection, command: MdmCommand) -> ApplyDecision:
        decision = self._decide(_View(connection), command)
        if decision.applied:
            write_decision(connection, decision)
        return decision

    def _decide(self, view: MdmView, command: MdmCommand) -> ApplyDecision:
        if isinstance(command, UpsertContact):
            return decide_contact(command, view.contact(command.contact_id))
        if isinstance(command, UpsertServicePoint):
            return decide_service_point(command, view.service_point(command.sp_id), self.admin)
        return decide_with(view, command, self.admin)

    # --- reading ---------------------------------------------------------------------------

    def last_positions(self, topic: str) -> dict[int, int]:
        c = t.consumed_positions.c
        with self.engine.connect() as connection:
            rows = connection.execute(select(c.partition, c.offset).where(c.topic == topic)
                                      .order_by(c.partition)).all()
        return {int(partition): int(offset) for partition, offset in rows}

    def unpublished(self, limit: int) -> list[OutboxEntry]:
        entries: list[OutboxEntry] = []
        with self.engine.connect() as connection:
            for kind, table in _OUTBOXES.items():
                rows = connection.execute(
                    select(table).where(table.c.published_at.is_(None))
                    .order_by(table.c.seq).limit(limit)).mappings()
                entries.extend(_outbox_entry(kind, row) for row in rows)
        return entries

    def mark_published(self, entries: Sequence[OutboxEntry], at: dt.datetime) -> None:
        # By source position, the unique key of both outboxes: the answers of a batch are
        # published from memory, without the sequence numbers the rows got.
        offsets: dict[tuple[OutboxKind, str, int], list[int]] = {}
        for entry in entries:
            source = entry.source
            offsets.setdefault((entry.kind, source.topic, source.partition),
                               []).append(source.offset)
        if not offsets:
            return
        with self._transaction() as connection:
            for (kind, topic, partition), chosen in sorted(offsets.items()):
                update_in(connection, _OUTBOXES[kind], {"published_at": at.astimezone(dt.UTC)},
                          {"source_topic": topic, "source_partition": partition},
                          "source_offset", sorted(chosen), ranged=True)

    def purge_history(self, business_date: dt.date) -> int:
        return self.purge_published(self.admin.installation.history_cutoff(business_date))

    def purge_published(self, before: dt.datetime, *, chunk: int = 5_000) -> int:
        """Remove the acknowledgements published before ``before``, in seq order, ``chunk``
        per transaction, up to the first one published at or after it (the outbox is
        published in seq order: the rest were published later; an unpublished one is kept
        and passed). The worker resumes after its stored positions
        (``mdm_consumed_positions``), so it does not read those records again; a consumer
        sought back by hand would have them answered as duplicates (the usage subscription
        holds a version at least as new), not applied twice. Dead letters are kept: they are
        what an operator comes back to."""
        c = t.acknowledgements.c
        removed, after = 0, 0
        while True:
            with self._transaction() as connection:
                head = connection.execute(select(c.seq, c.published_at).where(c.seq > after)
                                          .order_by(c.seq).limit(chunk)).all()
                older = list(itertools.takewhile(
                    lambda row: row.published_at is None or _utc(row.published_at) < before,
                    head))
                doomed = [int(row.seq) for row in older if row.published_at is not None]
                for part in in_batches(doomed):
                    removed += connection.execute(t.acknowledgements.delete().where(
                        c.seq.in_(part))).rowcount
            if len(older) < len(head) or len(head) < chunk:
                return removed
            after = int(head[-1].seq)

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(select(1))

    def get_us(self, external_id: str) -> UsageSubscription | None:
        with self.engine.connect() as connection:
            found = load_subscriptions(
                connection, t.usage_subscriptions.c.external_id == external_id)
        return found[0] if found else None

    def list_us(self, *, status: UsStatus | None = None,
                sp_id: str | None = None) -> list[UsageSubscription]:
        us, link = t.usage_subscriptions.c, t.us_sp_links.c
        conditions: list[ColumnElement[bool]] = []
        if status is not None:
            conditions.append(us.status == status.value)
        if sp_id is not None:
            conditions.append(us.external_id.in_(
                select(link.external_id).where(link.sp_id == sp_id)))
        with self.engine.connect() as connection:
            return load_subscriptions(connection, and_(true(), *conditions))

    def us_sharing_sps(self, sp_ids: Collection[str], us_type: str,
                       excluding: str) -> list[UsageSubscription]:
        """Non-inactive USs of ``us_type`` other than ``excluding`` linking any of ``sp_ids``:
        what the cross-US check of D2-USSPDTVAL compares a candidate with."""
        with self.engine.connect() as connection:
            return _View(connection).sharing_service_points(sp_ids, us_type, excluding)

    def get_service_point(self, sp_id: str) -> ServicePointCopy | None:
        with self.engine.connect() as connection:
            found = load_service_points(connection, t.service_points.c.sp_id == sp_id)
        return found[0] if found else None

    def get_contact(self, contact_id: str) -> Contact | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(t.contacts).where(
                t.contacts.c.contact_id == contact_id)).mappings().first()
        return None if row is None else Contact.model_validate(dict(row))


_OUTBOXES = {OutboxKind.ACKNOWLEDGEMENT: t.acknowledgements,
             OutboxKind.DEAD_LETTER: t.dead_letters}


def _utc(moment: dt.datetime) -> dt.datetime:
    # SQLite gives back the UTC time written without its zone.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _position_key(position: ConsumedPosition) -> str:
    return f"position:{position.topic}:{position.partition}"


def _source(position: ConsumedPosition) -> dict[str, Any]:
    return {"source_topic": position.topic, "source_partition": position.partition,
            "source_offset": position.offset}


def _outbox_entry(kind: OutboxKind, row: Any) -> OutboxEntry:
    key = (row["source_key"] if kind is OutboxKind.DEAD_LETTER
           else f"{row['entity_type']}:{row['entity_id']}".encode())
    return OutboxEntry(
        kind, None if key is None else bytes(key), row["document"].encode(),
        ConsumedPosition(row["source_topic"], int(row["source_partition"]),
                         int(row["source_offset"])))


def _already_consumed(connection: Connection, position: ConsumedPosition) -> bool:
    """Whether an answer (acknowledgement or dead letter) is stored for ``position``."""
    for table in _OUTBOXES.values():
        c = table.c
        found = connection.execute(select(c.seq).where(
            c.source_topic == position.topic, c.source_partition == position.partition,
            c.source_offset == position.offset)).first()
        if found is not None:
            return True
    return False
