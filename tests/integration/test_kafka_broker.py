"""The test broker is a genuine Apache Kafka and behaves like one.

These tests talk to it with kafka-python only (no project code in between), so they prove the
harness, not our adapters: compacted multi-partition topics, an idempotent producer, consumer
group commits that survive a consumer restart, and end offsets matching what was produced.
"""

from __future__ import annotations

import uuid

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

pytestmark = pytest.mark.kafka

MESSAGES = 1000


@pytest.fixture
def topic(kafka_bootstrap: str) -> str:
    name = f"harness-{uuid.uuid4().hex[:10]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1,
                                      topic_configs={"cleanup.policy": "compact"})])
    finally:
        admin.close()
    return name


def test_broker_reports_an_apache_kafka_cluster(kafka_bootstrap: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        cluster = admin.describe_cluster()
    finally:
        admin.close()
    assert len(cluster["brokers"]) == 1
    assert cluster["controller_id"] == cluster["brokers"][0]["broker_id"]
    # KRaft clusters carry a 22-character base64 cluster id.
    assert len(cluster["cluster_id"]) == 22


def test_topic_has_three_partitions_and_is_compacted(kafka_bootstrap: str, topic: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        described = admin.describe_topics([topic])
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        admin.close()
    assert len(described[0]["partitions"]) == 3
    assert configs["topic"][topic]["cleanup.policy"]["value"] == "compact"


def _produce(kafka_bootstrap: str, topic: str) -> dict[int, int]:
    producer = KafkaProducer(
        bootstrap_servers=kafka_bootstrap, enable_idempotence=True, acks="all",
        key_serializer=str.encode, value_serializer=str.encode, linger_ms=5,
    )
    per_partition: dict[int, int] = {}
    try:
        futures = [producer.send(topic, key=f"SA:{n % 250}", value=f"change {n}")
                   for n in range(MESSAGES)]
        producer.flush()
        for future in futures:
            metadata = future.get(timeout=30)
            per_partition[metadata.partition] = per_partition.get(metadata.partition, 0) + 1
    finally:
        producer.close()
    return per_partition


def test_idempotent_producer_writes_every_message_once(kafka_bootstrap: str, topic: str) -> None:
    per_partition = _produce(kafka_bootstrap, topic)
    assert sum(per_partition.values()) == MESSAGES
    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in range(3)]
        end_offsets = consumer.end_offsets(partitions)
    finally:
        consumer.close()
    assert sum(end_offsets.values()) == MESSAGES
    assert {tp.partition: offset for tp, offset in end_offsets.items()} == {
        p: per_partition.get(p, 0) for p in range(3)
    }
    # Keys hash to partitions: every key is always in the same partition.
    assert len([p for p in per_partition if per_partition[p] > 0]) >= 2


def _consumer(kafka_bootstrap: str, group: str, topic: str) -> KafkaConsumer:
    return KafkaConsumer(
        topic, bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False,
        auto_offset_reset="earliest", key_deserializer=bytes.decode,
        value_deserializer=bytes.decode, consumer_timeout_ms=10_000,
        max_poll_records=100,
    )


def test_consumer_group_resumes_exactly_at_committed_offsets(
    kafka_bootstrap: str, topic: str
) -> None:
    _produce(kafka_bootstrap, topic)
    group = f"group-{uuid.uuid4().hex[:8]}"
    seen_first: list[tuple[int, int]] = []
    first = _consumer(kafka_bootstrap, group, topic)
    try:
        for record in first:
            seen_first.append((record.partition, record.offset))
            if len(seen_first) == 400:
                break
        first.commit()
        committed = {tp.partition: first.committed(tp) for tp in first.assignment()}
    finally:
        first.close()
    assert len(seen_first) == 400
    # The committed offset of each partition is one past the last record read from it.
    last_read: dict[int, int] = {}
    for partition, offset in seen_first:
        last_read[partition] = max(offset, last_read.get(partition, -1))
    for partition, offset in committed.items():
        assert offset == last_read.get(partition, -1) + 1 or (
            partition not in last_read and offset in (None, 0)
        )

    second = _consumer(kafka_bootstrap, group, topic)
    seen_second: list[tuple[int, int]] = []
    try:
        for record in second:
            seen_second.append((record.partition, record.offset))
            if len(seen_first) + len(seen_second) == MESSAGES:
                break
    finally:
        second.close()
    # Nothing read twice, nothing skipped: together the two runs read every offset once.
    assert not set(seen_first) & set(seen_second)
    assert len(seen_first) + len(seen_second) == MESSAGES
    for partition in {p for p, _ in seen_second}:
        first_offset_after_restart = min(o for p, o in seen_second if p == partition)
        assert first_offset_after_restart == (committed.get(partition) or 0)
