"""Kafka's default partition choice for keyed records, in pure Python.

The in-process bus must put a key in the same partition number as Kafka does, so that data
keyed the same way is laid out identically on both transports (per-entity ordering, consumed
offsets per partition, replay). Kafka's Java client, kafka-python and aiokafka all hash the key
bytes with murmur2 (seed ``0x9747b28c``) and take ``(hash & 0x7fffffff) % partitions``.
"""

from __future__ import annotations

_SEED = 0x9747B28C
_M = 0x5BD1E995
_R = 24
_MASK32 = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Murmur2 of ``data`` as the Java client computes it, as an unsigned 32-bit integer.

    Java's result is a signed ``int`` with the same 32 bits; kafka-python returns the unsigned
    form, and the partition choice masks the sign bit away either way.
    """
    length = len(data)
    h = (_SEED ^ length) & _MASK32
    whole = length - length % 4
    for i in range(0, whole, 4):
        # Java reads four bytes little-endian into a (signed) int; masking keeps us in 32 bits.
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * _M) & _MASK32
        k ^= k >> _R
        k = (k * _M) & _MASK32
        h = (h * _M) & _MASK32
        h ^= k
    tail = length % 4
    if tail >= 3:
        h ^= data[whole + 2] << 16
    if tail >= 2:
        h ^= data[whole + 1] << 8
    if tail >= 1:
        h ^= data[whole]
        h = (h * _M) & _MASK32
    h ^= h >> 13
    h = (h * _M) & _MASK32
    h ^= h >> 15
    return h


def partition_for_key(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for ``key`` among ``partitions``."""
    if partitions < 1:
        raise ValueError(f"a topic needs at least one partition, got {partitions}")
    return (murmur2(key) & 0x7FFFFFFF) % partitions
