"""The in-process bus: Kafka's data model without a broker, for the demo and fast tests.

Each partition is an append-only list, so offsets start at 0 and are contiguous; keyed records
go to the partition Kafka's default partitioner would pick (``partitioning.py``); records
without a key go round robin. Committed offsets are kept per (group, topic, partition).

Not simulated: compaction and retention (every record stays, so ``beginning_offsets`` is
always 0; a compacted topic keeps every version, which a replay reading the latest per key
does not notice) and consumer-group rebalancing (consumers are assigned partitions explicitly,
exactly like the Kafka adapter does). The bus lives as long as the process: ``memory://name``
gives every component of one process the same bus, and nothing is shared between processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sync.transport.bus import (
    DEFAULT_MAX_RECORDS,
    BusError,
    Consumer,
    Headers,
    Message,
    Record,
    RecordTooLargeError,
    TopicDescription,
    TopicOutcome,
    TopicPartition,
    TopicSpec,
    TopicStatus,
    UnknownTopicError,
    check_message,
)
from sync.transport.partitioning import partition_for_key
from sync.transport.topics import topic_problems


def _wall_clock_ms() -> int:
    # Record timestamps are transport metadata (Kafka's CreateTime), not business time.
    return time.time_ns() // 1_000_000


@dataclass
class _Topic:
    spec: TopicSpec
    partitions: list[list[Record]]
    next_round_robin: int = 0


@dataclass
class _Waiter:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]


@dataclass
class MemoryBus:
    """One in-process bus. Safe to share between threads and event loops of one process."""

    name: str = ""
    now_ms: Callable[[], int] = _wall_clock_ms
    # The most bytes of key and value one record may have (Kafka's ``max.message.bytes``, as
    # far as one record goes); None: any size.
    max_record_bytes: int | None = None
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _topics: dict[str, _Topic] = field(default_factory=dict, repr=False)
    _committed: dict[tuple[str, TopicPartition], int] = field(default_factory=dict, repr=False)
    _waiters: list[_Waiter] = field(default_factory=list, repr=False)

    @property
    def url(self) -> str:
        return f"memory://{self.name}"

    async def start(self) -> None:
        """Nothing to connect to."""

    async def stop(self) -> None:
        """The data stays: other components of the process may still use this bus."""

    async def create_topics(self, specs: Sequence[TopicSpec]) -> list[TopicOutcome]:
        outcomes = []
        with self._lock:
            for spec in specs:
                if spec.partitions < 1:
                    raise ValueError(f"topic {spec.name!r} needs at least one partition, "
                                     f"got {spec.partitions}")
                existing = self._topics.get(spec.name)
                if existing is None:
                    self._topics[spec.name] = _Topic(spec, [[] for _ in range(spec.partitions)])
                    outcomes.append(TopicOutcome(spec, TopicStatus.CREATED))
                    continue
                problems = topic_problems(spec, _describe(existing))
                status = TopicStatus.DIFFERS if problems else TopicStatus.EXISTS
                outcomes.append(TopicOutcome(spec, status, problems))
        return outcomes

    async def describe_topics(self, names: Sequence[str] | None = None
                              ) -> list[TopicDescription]:
        with self._lock:
            wanted = self._topics if names is None else set(names)
            return [_describe(self._topics[name]) for name in sorted(wanted)
                    if name in self._topics]

    async def publish(self, topic: str, key: bytes | None, value: bytes | None,
                      headers: Headers = (), timestamp_ms: int | None = None) -> Record:
        [record] = await self.publish_batch(topic, [Message(key, value, headers, timestamp_ms)])
        return record

    async def publish_batch(self, topic: str, messages: Sequence[Message]) -> list[Record]:
        for message in messages:
            check_message(topic, message)
            size = len(message.key or b"") + len(message.value or b"")
            if self.max_record_bytes is not None and size > self.max_record_bytes:
                raise RecordTooLargeError(
                    f"publishing {len(messages)} record(s) to {topic!r} failed: a record of "
                    f"{size} bytes is larger than the {self.max_record_bytes} bytes {topic!r} "
                    "takes")
        with self._lock:
            stored = self._topic(topic)
            records = [self._append(stored, message) for message in messages]
            waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            _wake(waiter)
        return records

    def _append(self, stored: _Topic, message: Message) -> Record:
        count = len(stored.partitions)
        if message.key is None:
            partition = stored.next_round_robin % count
            stored.next_round_robin += 1
        else:
            partition = partition_for_key(message.key, count)
        log = stored.partitions[partition]
        record = Record(
            topic=stored.spec.name, partition=partition, offset=len(log), key=message.key,
            value=message.value, headers=tuple(message.headers),
            timestamp_ms=self.now_ms() if message.timestamp_ms is None else message.timestamp_ms,
        )
        log.append(record)
        return record

    async def beginning_offsets(self, topic: str) -> dict[int, int]:
        with self._lock:
            return {partition: 0 for partition in range(len(self._topic(topic).partitions))}

    async def end_offsets(self, topic: str) -> dict[int, int]:
        with self._lock:
            return {partition: len(log)
                    for partition, log in enumerate(self._topic(topic).partitions)}

    async def offsets_for_time(self, topic: str, timestamp_ms: int) -> dict[int, int]:
        with self._lock:
            found = {}
            for partition, log in enumerate(self._topic(topic).partitions):
                found[partition] = next(
                    (r.offset for r in log if r.timestamp_ms >= timestamp_ms), len(log))
            return found

    async def consumer(self, topics: Sequence[str], group_id: str | None = None
                       ) -> MemoryConsumer:
        with self._lock:
            partitions = [TopicPartition(topic, partition) for topic in topics
                          for partition in range(len(self._topic(topic).partitions))]
        consumer = MemoryConsumer(self, tuple(topics), group_id)
        await consumer.assign(partitions)
        return consumer

    # -- used by MemoryConsumer -------------------------------------------------------------

    def _topic(self, name: str) -> _Topic:
        try:
            return self._topics[name]
        except KeyError:
            raise UnknownTopicError(name) from None

    def _log(self, partition: TopicPartition) -> list[Record]:
        logs = self._topic(partition.topic).partitions
        if not 0 <= partition.partition < len(logs):
            raise BusError(f"topic {partition.topic!r} has no partition {partition.partition} "
                           f"(it has {len(logs)})")
        return logs[partition.partition]

    def _committed_offset(self, group_id: str, partition: TopicPartition) -> int | None:
        with self._lock:
            return self._committed.get((group_id, partition))

    def _commit(self, group_id: str, offsets: Mapping[TopicPartition, int]) -> None:
        with self._lock:
            for partition, offset in offsets.items():
                end = len(self._log(partition))
                if not 0 <= offset <= end:
                    raise BusError(f"cannot commit offset {offset} for {partition} of group "
                                   f"{group_id!r}: the partition holds offsets 0..{end}")
            for partition, offset in offsets.items():
                self._committed[(group_id, partition)] = offset

    async def _wait_for_data(self, timeout_s: float, has_data: Callable[[], bool]) -> None:
        loop = asyncio.get_running_loop()
        waiter = _Waiter(loop, loop.create_future())
        with self._lock:
            if has_data():
                return
            self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter.future, timeout_s)
        except TimeoutError:
            pass
        finally:
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)


def _describe(stored: _Topic) -> TopicDescription:
    spec = stored.spec
    return TopicDescription(spec.name, len(stored.partitions), spec.compacted,
                            spec.kafka_configs())


def _wake(waiter: _Waiter) -> None:
    def resolve() -> None:
        if not waiter.future.done():
            waiter.future.set_result(None)

    # A closed loop means its consumer is gone: nobody to wake.
    with contextlib.suppress(RuntimeError):
        waiter.loop.call_soon_threadsafe(resolve)


class MemoryConsumer(Consumer):
    """A reader of a ``MemoryBus`` with its own positions."""

    def __init__(self, bus: MemoryBus, topics: tuple[str, ...], group_id: str | None) -> None:
        self._bus = bus
        self._topics = topics
        self._group_id = group_id
        self._positions: dict[TopicPartition, int] = {}
        # Partitions a read has looked at: like Kafka's fetches, only these know their end.
        self._read_from: set[TopicPartition] = set()
        self._stopped = False

    @property
    def group_id(self) -> str | None:
        return self._group_id

    def assignment(self) -> frozenset[TopicPartition]:
        return frozenset(self._positions)

    async def assign(self, partitions: Iterable[TopicPartition]) -> None:
        self._check_running()
        positions = {}
        for partition in partitions:
            if partition.topic not in self._topics:
                raise BusError(f"cannot assign {partition}: the consumer reads "
                               f"{', '.join(self._topics)}")
            self._bus._log(partition)
            committed = (None if self._group_id is None
                         else self._bus._committed_offset(self._group_id, partition))
            positions[partition] = 0 if committed is None else committed
        self._positions = positions
        self._read_from &= set(positions)

    async def seek(self, partition: TopicPartition, offset: int) -> None:
        self._check_assigned(partition)
        end = len(self._bus._log(partition))
        if not 0 <= offset <= end:
            raise BusError(f"cannot seek {partition} to offset {offset}: "
                           f"the partition holds offsets 0..{end}")
        self._positions[partition] = offset

    async def position(self, partition: TopicPartition) -> int:
        self._check_assigned(partition)
        return self._positions[partition]

    def known_ends(self) -> dict[TopicPartition, int]:
        self._check_running()
        return {partition: len(self._bus._log(partition)) for partition in self._read_from}

    async def getmany(self, timeout_ms: int = 0,
                      max_records: int | None = None) -> list[Record]:
        self._check_running()
        limit = DEFAULT_MAX_RECORDS if max_records is None else max_records
        records = self._take(limit)
        if not records and timeout_ms > 0:
            await self._bus._wait_for_data(timeout_ms / 1000, self._has_data)
            records = self._take(limit)
        return records

    def _has_data(self) -> bool:
        return any(len(self._bus._log(p)) > offset for p, offset in self._positions.items())

    def _take(self, limit: int) -> list[Record]:
        taken: list[Record] = []
        with self._bus._lock:
            for partition in sorted(self._positions):
                if len(taken) >= limit:
                    break
                self._read_from.add(partition)
                start = self._positions[partition]
                chunk = self._bus._log(partition)[start:start + limit - len(taken)]
                taken.extend(chunk)
                self._positions[partition] = start + len(chunk)
        return taken

    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        group_id = self._require_group("commit")
        if offsets is None:
            offsets = dict(self._positions)
        for partition in offsets:
            self._check_assigned(partition)
        self._bus._commit(group_id, offsets)

    async def committed(self, partition: TopicPartition) -> int | None:
        group_id = self._require_group("read committed offsets")
        self._bus._log(partition)
        return self._bus._committed_offset(group_id, partition)

    async def stop(self) -> None:
        self._stopped = True

    def _require_group(self, action: str) -> str:
        self._check_running()
        if self._group_id is None:
            raise BusError(f"cannot {action}: the consumer of {', '.join(self._topics)} "
                           "reads without a consumer group")
        return self._group_id

    def _check_assigned(self, partition: TopicPartition) -> None:
        self._check_running()
        if partition not in self._positions:
            raise BusError(f"partition {partition} is not assigned to this consumer")

    def _check_running(self) -> None:
        if self._stopped:
            raise BusError(f"the consumer of {', '.join(self._topics)} is stopped")


_REGISTRY: dict[str, MemoryBus] = {}
_REGISTRY_LOCK = threading.Lock()


def memory_bus(name: str = "") -> MemoryBus:
    """The process-wide in-process bus called ``name`` (created on first use)."""
    with _REGISTRY_LOCK:
        bus = _REGISTRY.get(name)
        if bus is None:
            bus = _REGISTRY[name] = MemoryBus(name)
        return bus
