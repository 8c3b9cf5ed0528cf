"""The Bus contract: one suite, run against the in-process bus and a genuine Kafka broker.

Every test makes its own topics (unique names), so the suite can share one broker.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from sync.transport.bus import (
    Bus,
    BusError,
    Consumer,
    Message,
    Record,
    TopicPartition,
    TopicSpec,
    TopicStatus,
    UnknownTopicError,
)
from sync.transport.kafka import KafkaBus
from sync.transport.memory import MemoryBus
from sync.transport.partitioning import partition_for_key

PARTITIONS = 3


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.kafka)])
def bus_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return f"memory://contract-{uuid.uuid4().hex[:10]}"
    return f"kafka://{request.getfixturevalue('kafka_bootstrap')}"


@pytest.fixture
async def bus(bus_url: str) -> AsyncIterator[Bus]:
    adapter: Bus = (MemoryBus(bus_url.removeprefix("memory://"))
                    if bus_url.startswith("memory://")
                    else KafkaBus(bus_url.removeprefix("kafka://")))
    await adapter.start()
    try:
        yield adapter
    finally:
        await adapter.stop()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def topic(bus: Bus) -> str:
    name = unique("contract")
    [outcome] = await bus.create_topics([TopicSpec(name, PARTITIONS)])
    assert outcome.status is TopicStatus.CREATED
    return name


async def read(consumer: Consumer, count: int, timeout_s: float = 30.0) -> list[Record]:
    """Exactly ``count`` records (fails on fewer within the timeout, or more)."""
    records: list[Record] = []
    deadline = time.monotonic() + timeout_s
    while len(records) < count and time.monotonic() < deadline:
        records += await consumer.getmany(timeout_ms=200, max_records=count - len(records))
    assert len(records) == count, f"read {len(records)} of {count} records"
    return records


def by_partition(records: list[Record]) -> dict[int, list[int]]:
    offsets: dict[int, list[int]] = {}
    for record in records:
        offsets.setdefault(record.partition, []).append(record.offset)
    return offsets


async def test_publish_returns_the_acknowledged_record_with_its_offset(
    bus: Bus, topic: str
) -> None:
    first = await bus.publish(topic, b"SA:1", b"v1", headers=(("kind", b"SA"),))
    second = await bus.publish(topic, b"SA:1", b"v2")
    assert (first.topic, first.key, first.value) == (topic, b"SA:1", b"v1")
    assert first.partition == second.partition == partition_for_key(b"SA:1", PARTITIONS)
    assert (first.offset, second.offset) == (0, 1)
    assert first.header("kind") == b"SA"
    assert first.timestamp_ms > 0


async def test_keyed_records_land_where_kafkas_default_partitioner_puts_them(
    bus: Bus, topic: str
) -> None:
    keys = [f"SA:{n}".encode() for n in range(60)]
    records = await bus.publish_batch(topic, [Message(key, b"x") for key in keys])
    assert [r.partition for r in records] == [partition_for_key(k, PARTITIONS) for k in keys]
    assert len({r.partition for r in records}) == PARTITIONS


async def test_offsets_start_at_zero_are_contiguous_and_end_offsets_count_them(
    bus: Bus, topic: str
) -> None:
    assert await bus.end_offsets(topic) == dict.fromkeys(range(PARTITIONS), 0)
    assert await bus.beginning_offsets(topic) == dict.fromkeys(range(PARTITIONS), 0)
    records = await bus.publish_batch(
        topic, [Message(f"P:{n % 40}".encode(), str(n).encode()) for n in range(300)])
    records += [await bus.publish(topic, None, f"unkeyed {n}".encode()) for n in range(9)]
    offsets = by_partition(records)
    for partition_offsets in offsets.values():
        assert sorted(partition_offsets) == list(range(len(partition_offsets)))
    assert await bus.end_offsets(topic) == {
        p: len(offsets.get(p, [])) for p in range(PARTITIONS)}
    assert sum((await bus.end_offsets(topic)).values()) == 309


async def test_batch_keeps_per_key_order_and_returns_records_in_message_order(
    bus: Bus, topic: str
) -> None:
    messages = [Message(f"SA:{n % 7}".encode(), f"{n}".encode()) for n in range(210)]
    records = await bus.publish_batch(topic, messages)
    assert [r.value for r in records] == [m.value for m in messages]
    consumer = await bus.consumer([topic])
    try:
        stored = await read(consumer, 210)
    finally:
        await consumer.stop()
    for key in {m.key for m in messages}:
        values = [r.value for r in sorted(stored, key=lambda r: r.offset) if r.key == key]
        assert values == [m.value for m in messages if m.key == key]


async def test_headers_and_tombstones_round_trip(bus: Bus) -> None:
    topic = unique("compacted")
    await bus.create_topics([TopicSpec(topic, PARTITIONS, compacted=True)])
    await bus.publish(topic, b"SA:9", b'{"v": 1}', headers=(("schema", b"1"), ("a", b"\x00")))
    tombstone = await bus.publish(topic, b"SA:9", None)
    assert tombstone.value is None
    consumer = await bus.consumer([topic])
    try:
        first, second = await read(consumer, 2)
    finally:
        await consumer.stop()
    assert first.headers == (("schema", b"1"), ("a", b"\x00"))
    assert (second.key, second.value, second.offset) == (b"SA:9", None, first.offset + 1)


async def test_a_record_needs_a_key_or_a_value(bus: Bus, topic: str) -> None:
    with pytest.raises(ValueError, match="neither key nor value"):
        await bus.publish(topic, None, None)
    assert sum((await bus.end_offsets(topic)).values()) == 0


async def test_publishing_to_a_missing_topic_names_it(bus: Bus) -> None:
    missing = unique("missing")
    with pytest.raises(UnknownTopicError, match=missing):
        await bus.publish(missing, b"k", b"v")


async def test_group_consumer_resumes_exactly_at_committed_offsets(
    bus: Bus, topic: str
) -> None:
    await bus.publish_batch(topic, [Message(f"SA:{n}".encode(), b"a") for n in range(90)])
    group = unique("group")
    first = await bus.consumer([topic], group_id=group)
    try:
        assert first.assignment() == {TopicPartition(topic, p) for p in range(PARTITIONS)}
        head = await read(first, 40)
        await first.commit()
        committed = {p: await first.committed(p) for p in first.assignment()}
        # read further without committing: the next consumer must not skip these
        await read(first, 20)
    finally:
        await first.stop()
    consumed = by_partition(head)
    assert committed == {TopicPartition(topic, p): len(consumed.get(p, []))
                         for p in range(PARTITIONS)}

    second = await bus.consumer([topic], group_id=group)
    try:
        for partition, offset in committed.items():
            assert await second.position(partition) == offset
        rest = await read(second, 50)
    finally:
        await second.stop()
    assert {(r.partition, r.offset) for r in head}.isdisjoint(
        {(r.partition, r.offset) for r in rest})
    assert len(head) + len(rest) == 90


async def test_commit_of_explicit_offsets_is_what_a_new_consumer_starts_from(
    bus: Bus, topic: str
) -> None:
    await bus.publish_batch(topic, [Message(b"one-key", str(n).encode()) for n in range(10)])
    partition = TopicPartition(topic, partition_for_key(b"one-key", PARTITIONS))
    group = unique("group")
    consumer = await bus.consumer([topic], group_id=group)
    try:
        await consumer.commit({partition: 7})
    finally:
        await consumer.stop()
    again = await bus.consumer([topic], group_id=group)
    try:
        assert await again.committed(partition) == 7
        records = await read(again, 3)
    finally:
        await again.stop()
    assert [r.value for r in records] == [b"7", b"8", b"9"]


async def test_seek_re_reads_from_the_given_offset(bus: Bus, topic: str) -> None:
    await bus.publish_batch(topic, [Message(b"k", str(n).encode()) for n in range(12)])
    partition = TopicPartition(topic, partition_for_key(b"k", PARTITIONS))
    consumer = await bus.consumer([topic])
    try:
        await consumer.assign([partition])
        assert consumer.assignment() == {partition}
        assert len(await read(consumer, 12)) == 12
        await consumer.seek(partition, 5)
        assert await consumer.position(partition) == 5
        again = await read(consumer, 7)
        with pytest.raises(BusError, match="offset 13"):
            await consumer.seek(partition, 13)
    finally:
        await consumer.stop()
    assert [r.offset for r in again] == list(range(5, 12))


async def test_consumer_without_group_reads_up_to_frozen_end_offsets(
    bus: Bus, topic: str
) -> None:
    await bus.publish_batch(topic, [Message(f"SA:{n}".encode(), b"old") for n in range(120)])
    frozen = await bus.end_offsets(topic)
    await bus.publish_batch(topic, [Message(f"SA:{n}".encode(), b"new") for n in range(30)])
    consumer = await bus.consumer([topic])
    seen: list[Record] = []
    try:
        with pytest.raises(BusError, match="without a consumer group"):
            await consumer.commit()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            positions = {p.partition: await consumer.position(p) for p in consumer.assignment()}
            if all(positions[p] >= end for p, end in frozen.items()):
                break
            seen += [r for r in await consumer.getmany(timeout_ms=200)
                     if r.offset < frozen[r.partition]]
    finally:
        await consumer.stop()
    assert len(seen) == 120
    assert {r.value for r in seen} == {b"old"}


async def test_a_batch_larger_than_the_producers_batches_is_returned_as_it_was_written(
        bus: Bus, topic: str) -> None:
    # 300 records of 4 KiB in 6 keys: about 400 KiB per partition, more than one of the
    # producer's record batches (256 KiB) each.
    messages = [Message(f"SA:{n % 6}".encode(), f"{n:04d}".encode() * 1024,
                        (("sync-request-id", f"SR-{n}".encode()),)) for n in range(300)]
    written = await bus.publish_batch(topic, messages)
    consumer = await bus.consumer([topic])
    try:
        read_back = await read(consumer, 300)
    finally:
        await consumer.stop()
    assert [(r.key, r.value, r.headers) for r in written] == [
        (m.key, m.value, m.headers) for m in messages]
    assert sorted(written, key=lambda r: (r.partition, r.offset)) == sorted(
        read_back, key=lambda r: (r.partition, r.offset))  # time stamps included
    for partition, offsets in by_partition(written).items():
        assert sorted(offsets) == list(range(len(offsets))), partition
    for key in {m.key for m in messages}:
        mine = [r for r in written if r.key == key]
        assert [r.offset for r in mine] == sorted(r.offset for r in mine)  # order per key
        assert partition_for_key(key or b"", PARTITIONS) == mine[0].partition


async def test_known_ends_follow_what_the_reads_brought_back(bus: Bus, topic: str) -> None:
    first = partition_for_key(b"first", PARTITIONS)
    await bus.publish_batch(topic, [Message(b"first", str(n).encode()) for n in range(7)])
    consumer = await bus.consumer([topic])
    try:
        records = await read(consumer, 7)
        after_read = consumer.known_ends()
        ends = await bus.end_offsets(topic)
        await bus.publish_batch(topic, [Message(b"first", b"later") for _ in range(3)])
        later = await read(consumer, 3)
        after_more = consumer.known_ends()
    finally:
        await consumer.stop()
    assert {r.partition for r in records + later} == {first}
    mine = TopicPartition(topic, first)
    assert after_read[mine] == 7 == ends[first]
    assert after_more[mine] == 10
    for known in (after_read, after_more):
        assert set(known) <= {TopicPartition(topic, p) for p in range(PARTITIONS)}
        # No partition is believed longer than it is.
        assert all(end <= 10 if tp == mine else end == 0 for tp, end in known.items())


async def test_getmany_waits_for_a_record_published_meanwhile(bus: Bus, topic: str) -> None:
    consumer = await bus.consumer([topic])
    try:
        assert await consumer.getmany(timeout_ms=0) == []

        async def publish_later() -> None:
            await asyncio.sleep(0.3)
            await bus.publish(topic, b"late", b"x")

        task = asyncio.create_task(publish_later())
        [record] = await read(consumer, 1, timeout_s=20)
        await task
    finally:
        await consumer.stop()
    assert record.key == b"late"


async def test_offsets_for_time_finds_the_first_record_at_or_after(
    bus: Bus, topic: str
) -> None:
    # recent timestamps: the broker's retention would delete records that look a year old
    base = time.time_ns() // 1_000_000 - 60_000
    await bus.publish_batch(topic, [Message(b"k", str(n).encode(), timestamp_ms=base + n * 1000)
                                    for n in range(5)])
    partition = partition_for_key(b"k", PARTITIONS)
    found = await bus.offsets_for_time(topic, base + 2500)
    assert found[partition] == 3
    assert (await bus.offsets_for_time(topic, base + 10_000))[partition] == 5
    assert (await bus.offsets_for_time(topic, base))[partition] == 0


async def test_create_topics_is_idempotent_and_reports_differences(bus: Bus) -> None:
    plain, compacted = unique("plain"), unique("compacted")
    specs = [TopicSpec(plain, 2), TopicSpec(compacted, 2, compacted=True,
                                            min_compaction_lag_ms=60_000)]
    assert [o.status for o in await bus.create_topics(specs)] == [TopicStatus.CREATED] * 2
    assert [o.status for o in await bus.create_topics(specs)] == [TopicStatus.EXISTS] * 2
    described = {d.name: d for d in await bus.describe_topics([plain, compacted])}
    assert (described[plain].partitions, described[plain].compacted) == (2, False)
    assert described[compacted].compacted
    assert described[compacted].configs["min.compaction.lag.ms"] == "60000"

    outcomes = await bus.create_topics([TopicSpec(plain, 4, compacted=True)])
    [differs] = outcomes
    assert differs.status is TopicStatus.DIFFERS
    assert differs.problems == (
        f"topic {plain!r} has 2 partitions, configured 4",
        f"topic {plain!r} has cleanup.policy 'delete', configured 'compact'",
    )
    assert (await bus.describe_topics([plain]))[0].partitions == 2
    assert await bus.describe_topics([unique("absent")]) == []
