"""Rebuilding an MDM store from the sync topic alone (disaster recovery).

Every record of a bounded replay (:mod:`sync.reconcile.replay`) goes through
:class:`~sync.worker.mdm_processor.MdmProcessor`, the live worker's own code: decode, map,
validate, apply, with the consumed position and the answer stored in the same transaction. So
the rebuilt store holds what the live one holds, its consumed positions included: a worker
started on it resumes right after the replayed range.

Only an empty store is rebuilt: replaying into a store that holds state would mix two histories.

Order-sensitive checks. MDM validates a US against the other USs of its service points
(``D2-USSPDTVAL``) and a sub against its master (``D2-VAL-SUBUS``); keys on different partitions
reach it in any interleaving. Live, CCB answers such a rejection by sending the entity again (a
new version on the topic). The replay reads the partitions in another interleaving than the live
worker did, so after the pass it applies once more the latest message of every key whose latest
record was rejected, in rounds until a round applies nothing: what CCB's re-queue would have
done.

Answers. The rebuilt store keeps, as the live worker does, an acknowledgement (or dead letter)
per consumed record, unpublished; the next worker started on the store publishes them. CCB
ignores answers for versions it has settled, and settles requests the lost store never answered.
``mark_answers_published`` marks them published instead (a rebuild for comparison only).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sync.clock import Clock
from sync.mapping.codec import decode_sync_message
from sync.mapping.sa_to_us import command_for
from sync.reconcile.replay import ProgressCallback, ReplayBounds, replay_batches, replay_bounds
from sync.storage.mdm import MdmStore
from sync.storage.mdm_census import mdm_row_counts
from sync.transport.bus import Bus, Record
from sync.worker.mdm_processor import MdmProcessor, SourceRecord
from sync.worker.stats import Verdict

MAX_REAPPLY_ROUNDS = 20


class ReplayTargetNotEmptyError(Exception):
    """The MDM store to rebuild already holds rows."""


@dataclass
class MdmReplayReport:
    bounds: ReplayBounds
    records: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    reapplied: int = 0  # latest messages applied after the pass (order-sensitive rejections)
    rows: dict[str, int] = field(default_factory=dict)
    answers_marked_published: int = 0

    def summary(self) -> str:
        rows = self.rows
        return (f"replayed {self.records} records of {self.bounds.topic}: "
                + ", ".join(f"{count} {verdict}" for verdict, count in sorted(
                    self.verdicts.items()))
                + f"; {self.reapplied} applied again after the pass; MDM now holds "
                f"{rows.get('mdm_usage_subscriptions', 0)} usage subscriptions, "
                f"{rows.get('mdm_service_points', 0)} service points, "
                f"{rows.get('mdm_contacts', 0)} contacts")

    def to_dict(self) -> dict[str, Any]:
        return {"replay": self.bounds.to_dict(), "records": self.records,
                "verdicts": dict(sorted(self.verdicts.items())), "reapplied": self.reapplied,
                "rows": self.rows, "answers_marked_published": self.answers_marked_published,
                "summary": self.summary()}


def require_empty(store: MdmStore) -> None:
    held = {table: count for table, count in mdm_row_counts(store).items() if count}
    if held:
        raise ReplayTargetNotEmptyError(
            "the MDM store is not empty (" + ", ".join(
                f"{table}: {count} rows" for table, count in sorted(held.items()))
            + "); replay rebuilds an empty store only: give a new database")


async def replay_into_mdm(bus: Bus, topic: str, store: MdmStore, clock: Clock, *,
                          since: dt.datetime | None = None,
                          progress: ProgressCallback | None = None,
                          mark_answers_published: bool = False) -> MdmReplayReport:
    """Rebuild the empty ``store`` from ``topic`` (from ``since``, else from the beginning)."""
    require_empty(store)
    processor = MdmProcessor(store, clock)
    bounds = await replay_bounds(bus, topic, since)
    report = MdmReplayReport(bounds)
    latest: dict[bytes | None, tuple[Verdict, Record]] = {}

    def process(batch: list[Record]) -> None:
        verdicts = processor.process_batch([SourceRecord.from_bus(record) for record in batch])
        for record, verdict in zip(batch, verdicts, strict=True):
            report.records += 1
            report.verdicts[verdict.value] += 1
            if record.key is not None:
                latest[record.key] = (verdict, record)

    async for batch in replay_batches(bus, bounds, progress=progress):
        await asyncio.to_thread(process, batch)
    report.reapplied = await asyncio.to_thread(_reapply_rejected, store, latest)
    if mark_answers_published:
        report.answers_marked_published = await asyncio.to_thread(
            _mark_answers_published, store, clock)
    report.rows = mdm_row_counts(store)
    return report


def _reapply_rejected(store: MdmStore,
                      latest: dict[bytes | None, tuple[Verdict, Record]]) -> int:
    """Apply again, in rounds, the latest message of each key whose latest record was
    rejected; returns how many applied."""
    waiting = [record for verdict, record in latest.values() if verdict is Verdict.REJECTED]
    applied = 0
    for _ in range(MAX_REAPPLY_ROUNDS):
        still = []
        for record in waiting:
            assert record.value is not None  # a rejection was decoded and mapped
            command = command_for(decode_sync_message(record.value))
            assert command is not None
            if store.apply(command).applied:
                applied += 1
            else:
                still.append(record)
        if len(still) == len(waiting):
            break
        waiting = still
    return applied


def _mark_answers_published(store: MdmStore, clock: Clock) -> int:
    marked = 0
    while entries := store.unpublished(1000):
        store.mark_published(entries, clock.now())
        marked += len(entries)
    return marked
