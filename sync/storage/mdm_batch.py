"""Consuming a batch of records in one MDM transaction.

The single-record path (:meth:`MdmStore.consume`) costs a transaction and a dozen statements per
record. Here a whole batch shares one transaction, and the decisions read and write a
:class:`BatchView`: an in-transaction cache loaded up front with a few ``IN`` queries, to which
each applied decision is written back, so a later record of the batch sees an earlier one's
result exactly as it would after a commit. At the end, the final state of every entity the batch
changed is written with a few multi-row statements, then the acknowledgements, the dead letters
and one consumed position per partition.

The decisions are the same pure domain functions as on the single-record path, and every read
the domain makes is answered from a cache that is complete for the question asked:

- a subscription, service point or contact: loaded by id (in bulk up front, singly on a miss);
- the subscriptions sharing a service point: every subscription linking it in the database is
  loaded once the SP is asked about, and the cache's own (possibly newer) state decides;
- the subs of a master: likewise, per master.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, select

from sync.mdm.commands import MdmCommand, UpsertContact, UpsertServicePoint
from sync.mdm.decision import ApplyDecision
from sync.mdm.model import Contact, ServicePointCopy, UsageSubscription, UsStatus
from sync.mdm.ports import (
    BatchItem,
    BatchResult,
    Consumed,
    ConsumedPosition,
    ConsumeItem,
    DeadLetterItem,
)
from sync.storage import mdm_schema as t
from sync.storage.bulk_sql import insert_many, select_in
from sync.storage.mdm_rows import (
    load_contacts_by_id,
    load_service_points_by_id,
    load_subscriptions_by,
    load_subscriptions_by_id,
    record_position,
    write_states,
)

Decide = Callable[["BatchView", MdmCommand], ApplyDecision]


class BatchView:
    """An :class:`~sync.mdm.ports.MdmView` over one transaction with a write-back cache."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._subscriptions: dict[str, UsageSubscription | None] = {}
        self._service_points: dict[str, ServicePointCopy | None] = {}
        self._contacts: dict[str, Contact | None] = {}
        self._linking: defaultdict[str, set[str]] = defaultdict(set)  # SP -> cached US ids
        self._subs_of: defaultdict[str, set[str]] = defaultdict(set)  # master -> cached US ids
        self._sharing_loaded: set[str] = set()
        self._masters_loaded: set[str] = set()
        self._changed_subscriptions: set[str] = set()
        self._changed_service_points: set[str] = set()
        self._changed_contacts: set[str] = set()

    # --- filling the cache -----------------------------------------------------------------

    def preload(self, commands: Iterable[MdmCommand]) -> None:
        """Load in bulk what deciding ``commands`` will read."""
        us_ids: set[str] = set()
        sp_ids: set[str] = set()
        contact_ids: set[str] = set()
        masters: set[str] = set()
        for command in commands:
            if isinstance(command, UpsertContact):
                contact_ids.add(command.contact_id)
            elif isinstance(command, UpsertServicePoint):
                sp_ids.add(command.sp_id)
            else:
                us_ids.add(command.external_id)
                if command.master_external_id is not None:
                    masters.add(command.master_external_id)
                sp_ids.update(link.sp_id for link in command.sp_links)
                sp_ids.update(sp.sp_id for sp in command.service_points)
        self._load_subscriptions(us_ids | masters)
        self._load_service_points(sp_ids)
        self._load_contacts(contact_ids)
        self._load_sharing(sp_ids)
        self._load_subs_of(masters)

    def _load_subscriptions(self, ids: Collection[str]) -> None:
        missing = [us_id for us_id in ids if us_id not in self._subscriptions]
        if not missing:
            return
        found = {us.external_id: us for us in load_subscriptions_by_id(self.connection, missing)}
        for us_id in missing:
            self._cache_subscription(us_id, found.get(us_id))

    def _remember_loaded(self, subscriptions: Iterable[UsageSubscription]) -> None:
        """Cache what a query found, never over a newer state the batch already holds."""
        for us in subscriptions:
            if us.external_id not in self._subscriptions:
                self._cache_subscription(us.external_id, us)

    def _load_service_points(self, ids: Collection[str]) -> None:
        missing = [sp_id for sp_id in ids if sp_id not in self._service_points]
        if missing:
            found = {sp.sp_id: sp for sp in load_service_points_by_id(self.connection, missing)}
            for sp_id in missing:
                self._service_points[sp_id] = found.get(sp_id)

    def _load_contacts(self, ids: Collection[str]) -> None:
        missing = [contact_id for contact_id in ids if contact_id not in self._contacts]
        if missing:
            found = {c.contact_id: c for c in load_contacts_by_id(self.connection, missing)}
            for contact_id in missing:
                self._contacts[contact_id] = found.get(contact_id)

    def _load_sharing(self, sp_ids: Collection[str]) -> None:
        missing = sorted(set(sp_ids) - self._sharing_loaded)
        if not missing:
            return
        linking = {us_id for us_id, in select_in(self.connection, t.us_sp_links,
                                                  ("external_id",), "sp_id", missing)}
        self._load_subscriptions(linking)
        self._sharing_loaded.update(missing)

    def _load_subs_of(self, masters: Collection[str]) -> None:
        missing = sorted(set(masters) - self._masters_loaded)
        if not missing:
            return
        self._remember_loaded(load_subscriptions_by(self.connection, "master_external_id",
                                                    missing))
        self._masters_loaded.update(missing)

    def _cache_subscription(self, us_id: str, us: UsageSubscription | None) -> None:
        old = self._subscriptions.get(us_id)
        if old is not None:
            for link in old.sp_links:
                self._linking[link.sp_id].discard(us_id)
            if old.master_external_id is not None:
                self._subs_of[old.master_external_id].discard(us_id)
        self._subscriptions[us_id] = us
        if us is not None:
            for link in us.sp_links:
                self._linking[link.sp_id].add(us_id)
            if us.master_external_id is not None:
                self._subs_of[us.master_external_id].add(us_id)

    # --- MdmView ---------------------------------------------------------------------------

    def usage_subscription(self, external_id: str) -> UsageSubscription | None:
        self._load_subscriptions([external_id])
        return self._subscriptions[external_id]

    def service_points(self, sp_ids: Collection[str]) -> dict[str, ServicePointCopy]:
        self._load_service_points(sp_ids)
        return {sp_id: sp for sp_id in sorted(sp_ids)
                if (sp := self._service_points[sp_id]) is not None}

    def service_point(self, sp_id: str) -> ServicePointCopy | None:
        self._load_service_points([sp_id])
        return self._service_points[sp_id]

    def contact(self, contact_id: str) -> Contact | None:
        self._load_contacts([contact_id])
        return self._contacts[contact_id]

    def count_active_subs(self, master_external_id: str, excluding: str) -> int:
        self._load_subs_of([master_external_id])
        return sum(1 for us_id in self._subs_of[master_external_id]
                   if us_id != excluding
                   and (us := self._subscriptions[us_id]) is not None
                   and us.status is not UsStatus.INACTIVE)

    def sharing_service_points(self, sp_ids: Collection[str], us_type: str,
                               excluding: str) -> list[UsageSubscription]:
        self._load_sharing(sp_ids)
        ids = sorted({us_id for sp_id in sp_ids for us_id in self._linking.get(sp_id, ())})
        sharing = []
        for us_id in ids:
            us = self._subscriptions[us_id]
            if (us is not None and us_id != excluding and us.us_type == us_type
                    and us.status is not UsStatus.INACTIVE):
                sharing.append(us)
        return sharing

    # --- writing back ----------------------------------------------------------------------

    def record(self, decision: ApplyDecision) -> None:
        """Make an applied decision what later reads of the batch see."""
        if not decision.applied:
            return
        for sp in decision.service_points:
            self._service_points[sp.sp_id] = sp
            self._changed_service_points.add(sp.sp_id)
        if decision.contact is not None:
            self._contacts[decision.contact.contact_id] = decision.contact
            self._changed_contacts.add(decision.contact.contact_id)
        if decision.usage_subscription is not None:
            us = decision.usage_subscription
            self._cache_subscription(us.external_id, us)
            self._changed_subscriptions.add(us.external_id)

    def flush(self) -> None:
        """Write the final state of everything the batch changed."""
        write_states(
            self.connection,
            [us for us_id in sorted(self._changed_subscriptions)
             if (us := self._subscriptions[us_id]) is not None],
            [sp for sp_id in sorted(self._changed_service_points)
             if (sp := self._service_points[sp_id]) is not None],
            [c for contact_id in sorted(self._changed_contacts)
             if (c := self._contacts[contact_id]) is not None])


def consume_batch_in(connection: Connection, items: Sequence[BatchItem],
                     decide: Decide) -> list[BatchResult]:
    """Consume ``items`` in order inside the caller's transaction (see the module text)."""
    answered = _answered_among(connection, [item.position for item in items])
    view = BatchView(connection)
    view.preload(item.command for item in items
                 if isinstance(item, ConsumeItem) and item.command is not None)
    results: list[BatchResult] = []
    acks: list[dict[str, Any]] = []
    letters: list[dict[str, Any]] = []
    last: dict[tuple[str, int], int] = {}
    for item in items:
        position = item.position
        if _key(position) in answered:  # answered before: the same as the single calls say it
            results.append(False if isinstance(item, DeadLetterItem) else None)
            continue
        answered.add(_key(position))
        if isinstance(item, DeadLetterItem):
            letters.append({**_source(position), "source_key": item.record.source_key,
                            "failure": item.record.failure, "document": item.record.document})
            results.append(True)
        else:
            decision = None
            if item.command is not None:
                decision = decide(view, item.command)
                view.record(decision)
            ack = item.acknowledge(decision)
            acks.append({**_source(position), "sync_request_id": ack.sync_request_id,
                         "entity_type": ack.entity_type, "entity_id": ack.entity_id,
                         "version": ack.version, "outcome": ack.outcome,
                         "document": ack.document})
            results.append(Consumed(decision, ack))
        partition = (position.topic, position.partition)
        last[partition] = max(last.get(partition, -1), position.offset)
    view.flush()
    insert_many(connection, t.acknowledgements, acks)
    insert_many(connection, t.dead_letters, letters)
    _advance_positions(connection, last)
    return results


def _key(position: ConsumedPosition) -> tuple[str, int, int]:
    return (position.topic, position.partition, position.offset)


def _source(position: ConsumedPosition) -> dict[str, Any]:
    return {"source_topic": position.topic, "source_partition": position.partition,
            "source_offset": position.offset}


def _answered_among(connection: Connection,
                    positions: Sequence[ConsumedPosition]) -> set[tuple[str, int, int]]:
    """Which of ``positions`` already have an answer stored: per partition, one range query
    per outbox table."""
    ranges: dict[tuple[str, int], tuple[int, int]] = {}
    for position in positions:
        low, high = ranges.get((position.topic, position.partition),
                               (position.offset, position.offset))
        ranges[(position.topic, position.partition)] = (min(low, position.offset),
                                                        max(high, position.offset))
    answered: set[tuple[str, int, int]] = set()
    for (topic, partition), (low, high) in ranges.items():
        for table in (t.acknowledgements, t.dead_letters):
            c = table.c
            answered.update((topic, partition, int(offset)) for offset in connection.execute(
                select(c.source_offset).where(
                    c.source_topic == topic, c.source_partition == partition,
                    c.source_offset.between(low, high))).scalars())
    return answered


def _advance_positions(connection: Connection, last: dict[tuple[str, int], int]) -> None:
    for (topic, partition), offset in sorted(last.items()):
        record_position(connection, ConsumedPosition(topic, partition, offset))
