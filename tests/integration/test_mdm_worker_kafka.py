"""The MDM worker on a real Apache Kafka: the faust agent applies and acknowledges, dead-letters
malformed messages and goes on, and a worker process (the default engine) killed with SIGKILL in
the middle of 10,000 messages loses none and applies none twice once restarted."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import socket
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
from sync.worker.mdm import run_mdm_worker
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
        """Every record of ``topic`` once it holds at least ``count`` (fails after
        ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        while sum((await self.bus.end_offsets(topic)).values()) < count:
            assert time.monotonic() < deadline, f"{topic}: fewer than {count} records"
            await asyncio.sleep(0.2)
        ends = await self.bus.end_offsets(topic)
        consumer = await self.bus.consumer([topic])
        records: list[Record] = []
        try:
            while len(records) < sum(ends.values()):
                assert time.monotonic() < deadline, f"{topic}: {len(records)} records read"
                records += await consumer.getmany(timeout_ms=500, max_records=5000)
        finally:
            await consumer.stop()
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def get_health(port: int) -> tuple[int, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    response = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


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
    web_port = free_port()
    app = build_app(rig.settings, rig.store, CLOCK, rig.bus, stats=stats,
                    app_id=f"mdm-test-{uuid.uuid4().hex[:6]}", data_dir=tmp_path / "faust",
                    session_timeout_s=6.0, web_port=web_port)
    running = asyncio.create_task(run_faust_worker(app, stop))
    try:
        await wait_for(lambda: sum(stats.counts.values()) >= 7 or running.done(), 90,
                       "the agent to consume 7 records")
        acks = await rig.acks(4)
        letters = await rig.read(rig.settings.topics.dead_letters, 3)
        await wait_for(lambda: stats.dead_letters_published == 3, 30, "publication")
        status, health = await get_health(web_port)
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
    assert (status, health["status"], health["store"]) == (200, "ok", "ok")
    assert (health["counts"]["applied"], health["counts"]["dead_lettered"]) == (4, 3)
    assert sum(health["lag"][rig.settings.topics.sync_requests].values()) == 0


# --- killed in the middle of 10,000 messages -------------------------------------------------

SAS, SA_VERSIONS = 950, 10
PERSONS, PERSON_VERSIONS = 100, 5  # 9,500 + 500 = 10,000 messages


def stream_of_changes() -> list[SyncMessage]:
    """Every SA and person changes version by version, entities interleaved, per-key order
    kept; each SA has its own SP so that every version is valid for the default admin data."""
    stop_date = dt.date(2025, 9, 1)
    messages: list[SyncMessage] = []
    for version in range(1, SA_VERSIONS + 1):
        for n in range(SAS):
            pending_stop = version % 2 == 0
            messages.append(sa_message(
                f"SA-{n:04d}", version=version, sp_ids=(f"SP-{n:04d}",),
                sa_status="30" if pending_stop else "20",
                end=stop_date if pending_stop else None))
        if version <= PERSON_VERSIONS:
            messages.extend(person_message(f"PER-{n:03d}", version=version,
                                           name=f"TENANT,NUMBER{version}")
                            for n in range(PERSONS))
    return messages


def start_worker(rig: Rig, log_path: Path, app_id: str) -> subprocess.Popen[bytes]:
    topics = rig.settings.topics
    env = {**os.environ, "C2M_SYNC_TOPIC_SYNC_REQUESTS": topics.sync_requests,
           "C2M_SYNC_TOPIC_ACKNOWLEDGEMENTS": topics.acknowledgements,
           "C2M_SYNC_TOPIC_DEAD_LETTERS": topics.dead_letters,
           "C2M_SYNC_TOPIC_PARTITIONS": str(rig.settings.topic_partitions)}
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "sync.worker.mdm", "--broker", rig.settings.broker_url,
             "--mdm-db-url", rig.url, "--app-id", app_id],  # the default engine
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


async def test_worker_killed_mid_stream_loses_nothing_and_applies_nothing_twice(
        rig: Rig, tmp_path: Path) -> None:
    messages = stream_of_changes()
    assert len(messages) == 10_000
    for start in range(0, len(messages), 2000):
        await rig.send([keyed(m) for m in messages[start:start + 2000]])
    log_path = tmp_path / "worker.log"
    app_id = f"mdm-kill-{uuid.uuid4().hex[:6]}"

    worker = start_worker(rig, log_path, app_id)
    try:
        await wait_for(lambda: rig.rows(acknowledgements) >= 1500 or worker.poll() is not None,
                       180, "the worker to consume 1,500 messages")
        assert worker.poll() is None, log_path.read_text()
        worker.send_signal(signal.SIGKILL)
        worker.wait(30)
    finally:
        if worker.poll() is None:
            worker.kill()
    consumed_at_kill = rig.rows(acknowledgements)
    assert consumed_at_kill < len(messages), "killed too late to prove anything"

    restarted = start_worker(rig, log_path, app_id)
    try:
        await wait_for(lambda: (rig.rows(acknowledgements) >= len(messages)
                                and not rig.store.unpublished(1))
                       or restarted.poll() is not None, 180, "the restarted worker to catch up")
        assert restarted.poll() is None, log_path.read_text()
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(60) == 0, log_path.read_text()  # a clean stop on SIGTERM
    finally:
        if restarted.poll() is None:
            restarted.kill()

    # Every entity ends at the last version published.
    for n in range(SAS):
        us = rig.store.get_us(f"SA-{n:04d}")
        assert us is not None
        assert us.last_applied_version == SA_VERSIONS
    for n in range(PERSONS):
        contact = rig.store.get_contact(f"PER-{n:03d}")
        assert contact is not None
        assert (contact.version, contact.name) == (PERSON_VERSIONS,
                                                   f"TENANT,NUMBER{PERSON_VERSIONS}")
    # One answer per source offset, every (entity, version) applied exactly once.
    with rig.store.engine.connect() as connection:
        c = acknowledgements.c
        outcomes = Counter(dict(connection.execute(
            select(c.outcome, func.count()).group_by(c.outcome)).all()))
        positions = connection.execute(select(func.count()).select_from(
            select(c.source_partition, c.source_offset).distinct().subquery())).scalar_one()
        applied_pairs = connection.execute(select(func.count()).select_from(
            select(c.entity_type, c.entity_id, c.version)
            .where(c.outcome == "SYNCHRONIZED").distinct().subquery())).scalar_one()
    assert rig.rows(acknowledgements) == positions == len(messages)
    assert rig.rows(dead_letters) == 0
    assert outcomes == Counter({"SYNCHRONIZED": len(messages)})
    assert applied_pairs == len({(m.entity_type, m.external_id, m.version) for m in messages})
    ends = await rig.bus.end_offsets(rig.settings.topics.sync_requests)
    assert rig.store.last_positions(rig.settings.topics.sync_requests) == {
        partition: end - 1 for partition, end in ends.items()}
    # Every sync request has its acknowledgement on the ack topic (repeats allowed: at least
    # once on the way out).
    acks = await rig.acks(len(messages), timeout_s=120)
    assert {ack.sync_request_id for ack in acks} == {m.sync_request_id for m in messages}


async def test_a_worker_started_before_its_topics_exist_creates_them_and_consumes(
        kafka_bootstrap: str, tmp_path: Path) -> None:
    """A faust consumer subscribed to a missing topic would get no partitions and idle for
    ever: the worker creates the missing sync topics before it subscribes."""
    prefix = f"mdmw-new-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        broker_url=f"kafka://{kafka_bootstrap}", mdm_db_url=f"sqlite:///{tmp_path / 'mdm.db'}",
        topic_partitions=3,
        topics=TopicNames(sync_requests=f"{prefix}.sync", acknowledgements=f"{prefix}.acks",
                          dead_letters=f"{prefix}.dlq"))
    stop = asyncio.Event()
    stats = WorkerStats()
    worker = asyncio.create_task(run_mdm_worker(settings, ADMIN, CLOCK, stop, engine="faust",
                                                stats=stats, app_id=f"{prefix}-app"))
    bus = KafkaBus(kafka_bootstrap)
    await bus.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            described = await bus.describe_topics([settings.topics.sync_requests])
            if described and described[0].partitions == 3:
                break
            assert time.monotonic() < deadline, "the worker did not create its topics"
            await asyncio.sleep(0.5)
        await bus.publish_batch(settings.topics.sync_requests, [keyed(sa_message("SA-1"))])
        await wait_for(lambda: stats.counts[Verdict.APPLIED] == 1, 90, "the message applied")
    finally:
        stop.set()
        await asyncio.wait_for(worker, 60)
        await bus.stop()
