"""A worker on a fresh in-process bus and a SQLite MDM store, and ways to read what it wrote."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from sync.clock import FixedClock
from sync.config.settings import Settings
from sync.mapping.codec import decode_acknowledgement, encode
from sync.mapping.messages import Acknowledgement, SyncMessage
from sync.mdm.ports import BatchItem, BatchResult, OutboxEntry
from sync.storage.mdm import MdmStore
from sync.storage.mdm_schema import acknowledgements, dead_letters
from sync.transport.bus import Message, Record
from sync.transport.memory import MemoryBus
from sync.transport.topics import sync_topic_specs
from sync.worker.mdm_loop import LoopTiming, MdmBusWorker
from sync.worker.mdm_processor import ApplyRetry
from tests.unit.crashing import CrashingDatabase
from tests.unit.mdm.builders import default_admin

ADMIN = default_admin()
SETTINGS = Settings(topic_partitions=3)
CLOCK = FixedClock(dt.date(2025, 3, 1))
FAST_RETRY = ApplyRetry(attempts=3, initial_wait_s=0.001, max_wait_s=0.005)
FAST = LoopTiming(poll_ms=20, outage_wait_s=0.01, outage_max_wait_s=0.05)


@dataclass
class Rig:
    bus: MemoryBus
    store: MdmStore

    def worker(self, **options: Any) -> MdmBusWorker:
        options.setdefault("retry", FAST_RETRY)
        options.setdefault("timing", FAST)
        return MdmBusWorker(self.bus, options.pop("store", self.store), SETTINGS, CLOCK,
                            **options)

    async def send(self, *items: SyncMessage | bytes | tuple[bytes | None, bytes | None]
                   ) -> list[Record]:
        """Publish messages (keyed by their entity), raw values (key b"raw"), or (key, value)."""
        messages = []
        for item in items:
            if isinstance(item, bytes):
                messages.append(Message(b"raw", item))
            elif isinstance(item, tuple):
                messages.append(Message(*item))
            else:
                messages.append(Message(item.key.encode(), encode(item)))
        return await self.bus.publish_batch(SETTINGS.topics.sync_requests, messages)

    async def acks(self) -> list[Acknowledgement]:
        return [decode_acknowledgement(r.value or b"")
                for r in await self.read(SETTINGS.topics.acknowledgements)]

    async def dead_letters(self) -> list[tuple[bytes | None, dict[str, Any]]]:
        return [(r.key, json.loads(r.value or b""))
                for r in await self.read(SETTINGS.topics.dead_letters)]

    async def read(self, topic: str) -> list[Record]:
        consumer = await self.bus.consumer([topic])
        records = await consumer.getmany(max_records=100_000)
        await consumer.stop()
        return sorted(records, key=lambda r: r.timestamp_ms)

    def outbox_rows(self) -> dict[str, int]:
        with self.store.engine.connect() as connection:
            return {table.name: int(connection.execute(
                select(func.count()).select_from(table)).scalar_one())
                for table in (acknowledgements, dead_letters)}


async def new_rig(url: str, name: str = "worker-test") -> Rig:
    bus = MemoryBus(name)
    await bus.create_topics(sync_topic_specs(SETTINGS))
    store = MdmStore(url, ADMIN)
    store.create_schema()
    return Rig(bus, store)


def by_request(acks: Sequence[Acknowledgement]) -> dict[str, str]:
    return {ack.sync_request_id: ack.outcome.value for ack in acks}


class CrashingStore:
    """The MDM store on a database that loses its last confirmed batch in a crash
    (:class:`tests.unit.crashing.CrashingDatabase`). Everything else is the real SQLite
    store."""

    def __init__(self, store: MdmStore, path: Path, *, crash_after_batch: int,
                 down_for_calls: int) -> None:
        self._store = store
        self.database = CrashingDatabase(path, store.dispose,
                                         crash_after_batch=crash_after_batch,
                                         down_for_calls=down_for_calls)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    @property
    def batches(self) -> int:
        return self.database.batches

    @property
    def refused(self) -> int:
        return self.database.refused

    def _answer(self) -> None:
        self.database.answer()

    def consume_batch(self, items: Sequence[BatchItem]) -> list[BatchResult]:
        return self.database.batch(lambda: self._store.consume_batch(items))

    def ping(self) -> None:
        self._answer()
        self._store.ping()

    def last_positions(self, topic: str) -> dict[int, int]:
        self._answer()
        return self._store.last_positions(topic)

    def unpublished(self, limit: int) -> list[OutboxEntry]:
        self._answer()
        return self._store.unpublished(limit)
