"""Record batches against the genuine broker: writes to a topic that takes smaller batches than
the producer fills are cut at the topic's limit, a limit lowered while the bus runs is read
again, and a record above the limit is refused with the limit named, without breaking the
producer for the writes after it."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

from sync.ccb.sync_requests import TOO_LARGE_CODE, SyncRequestState
from sync.transport.bus import Message, Record, RecordTooLargeError
from sync.transport.kafka import KafkaBus
from tests.integration.pipeline_support import loaded_pipeline, pipeline_settings

pytestmark = pytest.mark.kafka

TOPIC_LIMIT = 64 * 1024


@pytest.fixture
def admin(kafka_bootstrap: str) -> Iterator[KafkaAdminClient]:
    client = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        yield client
    finally:
        client.close()


def new_topic(admin: KafkaAdminClient, partitions: int, limit: int | None) -> str:
    name = f"record-batches-{uuid.uuid4().hex[:10]}"
    configs = {} if limit is None else {"max.message.bytes": str(limit)}
    admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs)])
    return name


def set_limit(admin: KafkaAdminClient, topic: str, limit: int) -> None:
    admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                        configs={"max.message.bytes": str(limit)})])


async def read_all(bus: KafkaBus, topic: str, count: int) -> list[Record]:
    consumer = await bus.consumer([topic])
    try:
        read_back: list[Record] = []
        for _ in range(100):
            read_back += await consumer.getmany(timeout_ms=200)
            if len(read_back) >= count:
                break
        return read_back
    finally:
        await consumer.stop()


def two_kib(count: int, key: bytes | None = b"SA:1", tag: str = "") -> list[Message]:
    """``count`` records of 2 KiB (one partition when keyed: 200 KiB for 100)."""
    return [Message(key, f"{tag}{n:03d}".encode().ljust(4, b"_") * 512) for n in range(count)]


def in_order(records: Sequence[Record]) -> list[tuple[int, bytes | None]]:
    return [(r.offset, r.value) for r in sorted(records, key=lambda r: r.offset)]


async def test_writes_to_a_topic_taking_smaller_batches_are_cut_at_its_limit(
        kafka_bootstrap: str, admin: KafkaAdminClient, caplog: pytest.LogCaptureFixture
) -> None:
    topic = new_topic(admin, 1, TOPIC_LIMIT)
    keyed, keyless = two_kib(100), two_kib(60, key=None, tag="k")
    bus = KafkaBus(kafka_bootstrap)  # 256 KiB batches: four times the topic's limit
    await bus.start()
    try:
        with caplog.at_level(logging.INFO, logger="sync.transport.kafka"):
            written = await bus.publish_batch(topic, keyed)
            written += await bus.publish_batch(topic, keyless)
        read_back = await read_all(bus, topic, len(keyed) + len(keyless))
    finally:
        await bus.stop()
    assert [r.value for r in written] == [m.value for m in keyed + keyless]
    assert in_order(read_back) == [(n, m.value) for n, m in enumerate(keyed + keyless)]
    assert f"record batches to {topic!r} are cut at {TOPIC_LIMIT} bytes" in caplog.text


async def test_a_limit_lowered_while_the_bus_runs_is_read_again_and_the_write_completes(
        kafka_bootstrap: str, admin: KafkaAdminClient) -> None:
    topic = new_topic(admin, 2, None)  # the broker's default: about 1 MiB
    bus = KafkaBus(kafka_bootstrap)
    await bus.start()
    try:
        first = await bus.publish_batch(topic, two_kib(3, tag="a"))
        set_limit(admin, topic, TOPIC_LIMIT)
        await asyncio.sleep(1)  # the brokers apply the change
        # 200 KiB on one partition: one batch at the limit read first, refused by the broker;
        # the bus reads the new limit, takes a new producer and writes the rest cut at it.
        second = await bus.publish_batch(topic, two_kib(100, tag="b"))
        third = await bus.publish_batch(topic, two_kib(2, tag="c"))
        read_back = await read_all(bus, topic, 105)
    finally:
        await bus.stop()
    expected = [m.value for m in two_kib(3, tag="a") + two_kib(100, tag="b")
                + two_kib(2, tag="c")]
    assert [r.value for r in first + second + third] == expected
    # Nothing of the refused batch reached the topic: each record is there once, in order.
    assert [value for _, value in in_order(read_back)] == expected
    assert [offset for offset, _ in in_order(read_back)] == list(range(105))


async def test_a_record_above_the_limit_is_refused_and_the_next_writes_go_through(
        kafka_bootstrap: str, admin: KafkaAdminClient) -> None:
    topic = new_topic(admin, 1, TOPIC_LIMIT)
    too_large = Message(b"SA:1", b"x" * (TOPIC_LIMIT + 1024))
    bus = KafkaBus(kafka_bootstrap)
    await bus.start()
    try:
        before = await bus.publish_batch(topic, two_kib(2, tag="a"))
        with pytest.raises(RecordTooLargeError) as caught:
            await bus.publish_batch(topic, [too_large])
        # aiokafka numbers an idempotent producer's batches per partition; the refused one
        # left a gap that failed every later write with OutOfOrderSequenceNumber until the
        # producer was replaced.
        after = await bus.publish_batch(topic, two_kib(2, tag="b"))
        read_back = await read_all(bus, topic, 4)
    finally:
        await bus.stop()
    text = str(caught.value)
    assert "MessageSizeTooLargeError" in text
    assert f"a record is larger than the {TOPIC_LIMIT} bytes {topic!r} takes" in text
    assert [r.offset for r in before + after] == [0, 1, 2, 3]
    assert [value for _, value in in_order(read_back)] == [
        m.value for m in two_kib(2, tag="a") + two_kib(2, tag="b")]



async def test_step_1_4_the_relay_sets_aside_requests_the_sync_topic_cannot_take(
        kafka_bootstrap: str, admin: KafkaAdminClient, tmp_path: Path) -> None:
    # The sample building's requests: persons of 294-364 bytes, SAs of 828-832 (key and
    # payload). A sync topic taking 600 bytes per record batch takes the first, never the
    # second: without setting them aside the relay would try the same batch for ever.
    pipeline = await loaded_pipeline(pipeline_settings(f"kafka://{kafka_bootstrap}", tmp_path,
                                                       "too-large"))
    try:
        outbox = pipeline.outbox
        topic = pipeline.settings.topics.sync_requests
        set_limit(admin, topic, 600)
        await asyncio.sleep(1)
        queue = outbox.next_batch(1_000)
        small = {r.id for r in queue if len(r.key) + len(r.payload) < 400}
        assert 0 < len(small) < len(queue)

        report = await pipeline.relay.drain()

        assert (report.published, report.set_aside) == (len(small), len(queue) - len(small))
        states = {r.id: outbox.get(r.id) for r in queue}
        assert {i for i, s in states.items() if s and s.state is SyncRequestState.SENT} == small
        refused = {i: s for i, s in states.items() if s and s.state is SyncRequestState.ERROR}
        assert set(refused) == {r.id for r in queue} - small
        assert all(s.errors[0].code == TOO_LARGE_CODE for s in refused.values())
        assert all("a record is larger than the 600 bytes" in s.errors[0].message
                   for s in refused.values())
        # The producer still writes after the refusals.
        [record] = await pipeline.bus.publish_batch(topic, [Message(b"SA:probe", b"{}")])
        assert record.offset >= 0
    finally:
        await pipeline.stop()
