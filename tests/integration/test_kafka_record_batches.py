"""Record batches against the genuine broker: a topic that takes smaller batches than the
producer fills refuses the write with the setting to lower named, and lowering it writes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from sync.transport.bus import Message, PublishError
from sync.transport.kafka import KafkaBus

pytestmark = pytest.mark.kafka

TOPIC_LIMIT = 64 * 1024


@pytest.fixture
def small_batch_topic(kafka_bootstrap: str) -> Iterator[str]:
    """A topic whose brokers take record batches of at most 64 KiB."""
    name = f"small-batches-{uuid.uuid4().hex[:10]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(name, 1, 1, topic_configs={
            "max.message.bytes": str(TOPIC_LIMIT)})])
        yield name
    finally:
        admin.delete_topics([name])
        admin.close()


async def test_a_batch_above_the_topics_limit_names_the_setting_and_a_lower_one_writes(
        kafka_bootstrap: str, small_batch_topic: str) -> None:
    # 100 records of 2 KiB under one key: one partition, 200 KiB in one batch by default.
    messages = [Message(b"SA:1", f"{n:04d}".encode() * 512) for n in range(100)]
    default = KafkaBus(kafka_bootstrap)
    await default.start()
    try:
        with pytest.raises(PublishError) as caught:
            await default.publish_batch(small_batch_topic, messages)
    finally:
        await default.stop()
    text = str(caught.value)
    assert "MessageSizeTooLargeError" in text
    assert "262144 bytes" in text
    assert "C2M_SYNC_KAFKA_PRODUCER_BATCH_BYTES" in text
    assert repr(small_batch_topic) in text

    lowered = KafkaBus(kafka_bootstrap, producer_batch_bytes=32 * 1024)
    await lowered.start()
    try:
        written = await lowered.publish_batch(small_batch_topic, messages)
        consumer = await lowered.consumer([small_batch_topic])
        try:
            read_back = []
            for _ in range(50):
                read_back += await consumer.getmany(timeout_ms=200)
                if len(read_back) >= len(messages):
                    break
        finally:
            await consumer.stop()
    finally:
        await lowered.stop()
    assert [r.value for r in written] == [m.value for m in messages]
    # Nothing of the refused write reached the topic: the lowered write is all there is.
    assert [(r.offset, r.value) for r in read_back] == [
        (n, m.value) for n, m in enumerate(messages)]
