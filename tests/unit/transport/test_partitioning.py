"""The pure-Python murmur2 and partition choice match Kafka's clients bit for bit."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from sync.transport.partitioning import murmur2, partition_for_key


@given(st.binary(max_size=300))
def test_murmur2_equals_kafka_python(key: bytes) -> None:
    assert murmur2(key) == kafka_python_murmur2(key)


@given(st.binary(min_size=1, max_size=120), st.integers(min_value=1, max_value=200))
def test_partition_equals_aiokafkas_default_partitioner(key: bytes, partitions: int) -> None:
    all_partitions = list(range(partitions))
    expected = DefaultPartitioner()(key, all_partitions, all_partitions)
    assert partition_for_key(key, partitions) == expected


@pytest.mark.parametrize(("key", "java_int"), [
    # org.apache.kafka.common.utils.UtilsTest#testMurmur2 (the Java client's signed results)
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
])
def test_murmur2_matches_the_java_client_vectors(key: bytes, java_int: int) -> None:
    assert murmur2(key) == java_int & 0xFFFFFFFF


def test_empty_key_hashes_and_partition_count_must_be_positive() -> None:
    assert partition_for_key(b"", 3) == (kafka_python_murmur2(b"") & 0x7FFFFFFF) % 3
    with pytest.raises(ValueError, match="at least one partition, got 0"):
        partition_for_key(b"k", 0)
