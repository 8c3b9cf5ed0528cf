"""What only the in-process bus has to show: the per-name registry, round robin for records
without a key, waking consumers from other threads, and refusing bad offsets."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest

from sync.transport.bus import BusError, TopicPartition, TopicSpec, UnknownTopicError, bus_for
from sync.transport.kafka import KafkaBus
from sync.transport.memory import MemoryBus, memory_bus


@pytest.fixture
async def bus() -> MemoryBus:
    bus = MemoryBus(f"unit-{uuid.uuid4().hex[:8]}", now_ms=lambda: 42)
    await bus.create_topics([TopicSpec("t", 3), TopicSpec("other", 1)])
    return bus


def test_bus_for_shares_one_memory_bus_per_name_and_builds_kafka_buses() -> None:
    name = f"shared-{uuid.uuid4().hex[:8]}"
    assert bus_for(f"memory://{name}") is bus_for(f"memory://{name}/") is memory_bus(name)
    assert bus_for(f"memory://{name}") is not bus_for("memory://another")
    kafka = bus_for("kafka://h1:9092,h2:9092/")
    assert isinstance(kafka, KafkaBus)
    assert kafka.bootstrap_servers == "h1:9092,h2:9092"
    with pytest.raises(ValueError, match="names no host:port"):
        bus_for("kafka://")
    with pytest.raises(ValueError, match=r"port 'abc' is not a number from 1 to 65535 \(got "
                                         r"'kafka://localhost:abc'\)"):
        bus_for("kafka://localhost:abc")
    with pytest.raises(ValueError, match=r"'redis://x' must start with memory:// or kafka://"):
        bus_for("redis://x")


async def test_records_without_key_go_round_robin(bus: MemoryBus) -> None:
    records = [await bus.publish("t", None, b"v") for _ in range(7)]
    assert [r.partition for r in records] == [0, 1, 2, 0, 1, 2, 0]
    assert records[0].timestamp_ms == 42


async def test_stopping_the_bus_keeps_its_data_for_the_rest_of_the_process(
    bus: MemoryBus,
) -> None:
    await bus.publish("t", b"k", b"v")
    await bus.stop()
    assert sum((await bus.end_offsets("t")).values()) == 1


async def test_consumer_is_woken_by_a_publish_from_another_thread(bus: MemoryBus) -> None:
    consumer = await bus.consumer(["t"])

    def publish_from_thread() -> None:
        asyncio.run(bus.publish("t", b"k", b"from thread"))

    timer = threading.Timer(0.2, publish_from_thread)
    timer.start()
    records = await consumer.getmany(timeout_ms=5_000)
    timer.join()
    assert [r.value for r in records] == [b"from thread"]


async def test_getmany_returns_empty_after_its_timeout(bus: MemoryBus) -> None:
    consumer = await bus.consumer(["t"])
    assert await consumer.getmany(timeout_ms=50) == []


async def test_bad_offsets_and_partitions_are_refused_and_change_nothing(
    bus: MemoryBus,
) -> None:
    await bus.publish("t", b"k", b"v")
    consumer = await bus.consumer(["t"], group_id="g")
    partition = next(iter(consumer.assignment()))
    with pytest.raises(BusError, match=r"cannot commit offset 5 for t\[\d\] of group 'g'"):
        await consumer.commit({partition: 5})
    assert await consumer.committed(partition) is None
    with pytest.raises(BusError, match=r"cannot seek t\[\d\] to offset -1"):
        await consumer.seek(partition, -1)
    with pytest.raises(BusError, match=r"cannot assign other\[0\]: the consumer reads t"):
        await consumer.assign([TopicPartition("other", 0)])
    with pytest.raises(BusError, match="topic 't' has no partition 7"):
        await consumer.assign([TopicPartition("t", 7)])
    assert consumer.assignment() == {TopicPartition("t", p) for p in range(3)}


async def test_stopped_consumer_refuses_to_read(bus: MemoryBus) -> None:
    consumer = await bus.consumer(["t"])
    await consumer.stop()
    with pytest.raises(BusError, match="consumer of t is stopped"):
        await consumer.getmany()


async def test_unknown_topics_are_named(bus: MemoryBus) -> None:
    with pytest.raises(UnknownTopicError, match="'absent'"):
        await bus.consumer(["absent"])
    with pytest.raises(UnknownTopicError, match="'absent'"):
        await bus.end_offsets("absent")
    with pytest.raises(ValueError, match="topic 'empty' needs at least one partition, got 0"):
        await bus.create_topics([TopicSpec("empty", 0)])
