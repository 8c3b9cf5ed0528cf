"""Kafka bus publishing: acknowledged writes, retries with backoff, clear errors.

A scripted producer stands in for aiokafka's (the bus takes a producer factory), so broker
failures happen exactly when a test says; the genuine broker runs the contract suite.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    OutOfOrderSequenceNumber,
    RequestTimedOutError,
    UnknownTopicOrPartitionError,
)
from aiokafka.structs import RecordMetadata, TopicPartition

from sync.config.settings import load_settings
from sync.transport import kafka
from sync.transport.bus import (
    BrokerUnavailableError,
    Message,
    PublishError,
    UnknownTopicError,
    bus_of,
)
from sync.transport.kafka import KafkaBus, RetryPolicy, is_retriable
from sync.transport.partitioning import partition_for_key

TOPIC = "c2m.sync-requests"
FAST = RetryPolicy(attempts=3, initial_wait_s=0.001, max_wait_s=0.002)

# Decides the fate of one send: None acknowledges it, an exception fails it.
Fate = Callable[[int, Message], BaseException | None]


@dataclass
class _Metadata:
    names: set[str]

    def topics(self) -> set[str]:
        return self.names


@dataclass
class _Described:
    """A DescribeConfigs answer: (error code, message, type, name, entries) per resource."""

    resources: list[tuple[int, str | None, int, str, list[tuple[str, str]]]]


@dataclass
class _Client:
    names: set[str]
    # What the broker answers about a topic's max.message.bytes: a limit, an error code
    # (an int below 100), or an exception raised by the request.
    limits: list[int | BaseException]
    asked: list[str] = field(default_factory=list)

    async def fetch_all_metadata(self) -> _Metadata:
        return _Metadata(self.names)

    def get_random_node(self) -> int:
        return 1

    async def send(self, node_id: int, request: Any) -> _Described:
        [(kind, topic, names)] = request._resources
        assert (kind, names) == (2, ["max.message.bytes"])
        self.asked.append(topic)
        answer = self.limits[0] if len(self.limits) == 1 else self.limits.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        if answer < 100:
            return _Described([(answer, "denied", 2, topic, [])])
        return _Described([(0, None, 2, topic, [("max.message.bytes", str(answer))])])


@dataclass(frozen=True)
class _Appended:
    offset: int
    timestamp: int


@dataclass
class ScriptedBatch:
    """A record batch that takes ``capacity`` records (aiokafka's takes bytes); its size
    counts the keys' and values' bytes (aiokafka's adds the record format's own)."""

    capacity: int
    messages: list[Message] = field(default_factory=list)
    closed: bool = False

    def size(self) -> int:
        return 61 + sum(len(m.key or b"") + len(m.value or b"") for m in self.messages)

    def append(self, *, timestamp: int | None, key: bytes | None, value: bytes | None,
               headers: list[tuple[str, bytes]]) -> _Appended | None:
        if self.closed or len(self.messages) >= self.capacity:
            return None
        self.messages.append(Message(key, value, tuple(headers), timestamp))
        # A record without a time stamp gets its create time (here one per record).
        return _Appended(len(self.messages) - 1,
                         timestamp if timestamp is not None else 2_000 + len(self.messages))

    def close(self) -> None:
        self.closed = True


@dataclass
class ScriptedProducer:
    """Records arrive in batches (``send_batch``); ``send`` takes a record alone. A batch
    fails as a whole when any of its records' fate is an error."""

    fate: Fate = lambda attempt, message: None
    start_failures: int = 0
    topics: set[str] = field(default_factory=lambda: {TOPIC})
    # The topic's max.message.bytes as the broker answers it, in turn (see _Client).
    limits: list[int | BaseException] = field(default_factory=lambda: [1_048_588])
    config: dict[str, Any] = field(default_factory=dict)
    sent: list[Message] = field(default_factory=list)
    start_calls: int = 0
    stopped: bool = False
    next_offsets: dict[int, int] = field(default_factory=dict)
    batch_capacity: int = 1000
    batches: list[tuple[int, int]] = field(default_factory=list)  # (partition, records)

    def __post_init__(self) -> None:
        self._client = _Client(self.topics, self.limits)

    @property
    def client(self) -> _Client:
        return self._client

    async def start(self) -> None:
        self.start_calls += 1
        if self.start_calls <= self.start_failures:
            raise KafkaConnectionError("Unable to bootstrap from [('broker', 9092)]")

    async def stop(self) -> None:
        self.stopped = True

    async def send(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                   timestamp_ms: int | None = None,
                   headers: list[tuple[str, bytes]] | None = None) -> asyncio.Future[Any]:
        message = Message(key, value, tuple(headers or ()), timestamp_ms)
        self.sent.append(message)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        error = self.fate(len(self.sent), message)
        if error is not None:
            future.set_exception(error)
            return future
        partition = partition_for_key(key, 3) if key is not None else 0
        offset = self.next_offsets.get(partition, 0)
        self.next_offsets[partition] = offset + 1
        future.set_result(RecordMetadata(topic, partition, TopicPartition(topic, partition),
                                         offset, 1_000, 0, 0))
        return future

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1, 2}

    def create_batch(self) -> ScriptedBatch:
        return ScriptedBatch(self.batch_capacity)

    async def send_batch(self, batch: ScriptedBatch, topic: str, *,
                         partition: int) -> asyncio.Future[Any]:
        assert batch.closed
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        error = None
        for message in batch.messages:
            self.sent.append(message)
            error = error or self.fate(len(self.sent), message)
        if error is not None:
            future.set_exception(error)
            return future
        self.batches.append((partition, len(batch.messages)))
        offset = self.next_offsets.get(partition, 0)
        self.next_offsets[partition] = offset + len(batch.messages)
        # A topic with create times: the broker answers -1 for the batch's time stamp.
        future.set_result(RecordMetadata(topic, partition, TopicPartition(topic, partition),
                                         offset, -1, 0, 0))
        return future


async def started_bus(producer: ScriptedProducer, retry: RetryPolicy = FAST,
                      **options: Any) -> KafkaBus:
    def factory(**config: Any) -> ScriptedProducer:
        producer.config = config
        return producer

    bus = KafkaBus("broker:9092", retry=retry, producer_factory=factory, **options)
    await bus.start()
    return bus


async def test_producer_is_idempotent_and_waits_for_all_replicas() -> None:
    producer = ScriptedProducer()
    await started_bus(producer)
    assert producer.config["enable_idempotence"] is True
    assert producer.config["acks"] == "all"
    assert producer.config["bootstrap_servers"] == "broker:9092"
    # Record batches of 256 KiB, not aiokafka's 16 KiB: a relay batch is a few of them.
    assert producer.config["max_batch_size"] == 256 * 1024


async def test_record_batch_size_comes_from_the_settings() -> None:
    producer = ScriptedProducer()
    settings = load_settings(environ={"C2M_SYNC_BROKER_URL": "kafka://broker:9092",
                                      "C2M_SYNC_KAFKA_PRODUCER_BATCH_BYTES": "65536"})
    bus = bus_of(settings)
    assert isinstance(bus, KafkaBus)
    await started_bus(producer, producer_batch_bytes=bus.producer_batch_bytes)
    assert bus.producer_batch_bytes == 65536 == producer.config["max_batch_size"]


async def test_publish_returns_the_acknowledged_offset() -> None:
    bus = await started_bus(ScriptedProducer())
    first = await bus.publish(TOPIC, b"SA:1", b"v1", headers=(("h", b"1"),))
    second = await bus.publish(TOPIC, b"SA:1", b"v2")
    assert (first.offset, second.offset) == (0, 1)
    assert first.partition == partition_for_key(b"SA:1", 3)
    assert first.headers == (("h", b"1"),)


@pytest.mark.parametrize("error", [KafkaConnectionError("connection reset"),
                                   NotLeaderForPartitionError(),
                                   RequestTimedOutError()])
async def test_broker_errors_that_pass_are_retried(error: Exception) -> None:
    producer = ScriptedProducer(fate=lambda attempt, _: error if attempt <= 2 else None)
    bus = await started_bus(producer)
    record = await bus.publish(TOPIC, b"SA:1", b"v")
    assert len(producer.sent) == 3
    assert record.offset == 0


async def test_exhausted_retries_name_the_topic_attempts_and_last_error() -> None:
    producer = ScriptedProducer(fate=lambda attempt, _: RequestTimedOutError("slow"))
    bus = await started_bus(producer)
    with pytest.raises(PublishError) as raised:
        await bus.publish(TOPIC, b"SA:1", b"v")
    assert str(raised.value) == (f"publishing 1 record(s) to {TOPIC!r} failed after 3 "
                                 "attempts: [Error 7] RequestTimedOutError: slow")
    assert len(producer.sent) == 3


async def test_an_error_that_will_not_pass_is_reported_at_once() -> None:
    producer = ScriptedProducer(fate=lambda attempt, _: MessageSizeTooLargeError())
    bus = await started_bus(producer)
    with pytest.raises(PublishError, match=r"failed: \[Error 10\] MessageSizeTooLargeError"):
        await bus.publish(TOPIC, b"SA:1", b"v" * 10)
    assert len(producer.sent) == 1


async def test_a_batch_too_large_for_the_broker_names_the_setting_to_lower() -> None:
    producer = ScriptedProducer(fate=lambda attempt, _: MessageSizeTooLargeError())
    bus = await started_bus(producer, producer_batch_bytes=300_000)
    with pytest.raises(PublishError) as caught:
        await bus.publish_batch(TOPIC, [Message(b"SA:1", b"v" * 10)])
    text = str(caught.value)
    assert "MessageSizeTooLargeError" in text
    assert "300000 bytes" in text
    assert "C2M_SYNC_KAFKA_PRODUCER_BATCH_BYTES" in text
    assert isinstance(caught.value.__cause__, MessageSizeTooLargeError)


def key_in(partition: int, name: str) -> bytes:
    """A key Kafka's default partitioner puts in ``partition`` of three."""
    return next(key for n in range(100) if partition_for_key(key := f"{name}{n}".encode(), 3)
                == partition)


async def test_batch_retry_resends_failed_batches_and_later_records_of_their_keys_only(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kafka, "keyless_partition", lambda partitions: partitions[0])
    a, b, c = key_in(0, "A"), key_in(1, "B"), key_in(2, "C")
    messages = [Message(a, b"a1"), Message(b, b"b1"), Message(b, b"b2"), Message(a, b"a2"),
                Message(c, b"c1"), Message(None, b"no key")]
    producer = ScriptedProducer(
        fate=lambda attempt, m: KafkaConnectionError("lost") if m.value == b"b1"
        and attempt <= len(messages) else None)
    bus = await started_bus(producer)
    records = await bus.publish_batch(TOPIC, messages)
    # B's partition's batch failed as a whole; nothing else is sent again.
    assert [m.value for m in producer.sent[len(messages):]] == [b"b1", b"b2"]
    assert [r.value for r in records] == [m.value for m in messages]
    assert [r.partition for r in records[:5]] == [0, 1, 1, 0, 2]
    b1, b2 = records[1], records[2]
    assert (b1.offset, b2.offset) == (0, 1)  # the latest value of key B is the last
    # The record without a key went where it was drawn (partition 0), after A's records.
    assert (records[5].partition, records[5].offset) == (0, 2)
    assert (records[0].offset, records[3].offset) == (0, 1)


async def test_keyed_records_go_in_batches_per_partition_with_their_offsets_and_stamps() -> None:
    key = key_in(1, "SA:")
    producer = ScriptedProducer(batch_capacity=2)
    bus = await started_bus(producer)
    messages = [Message(key, f"v{n}".encode(), (("n", str(n).encode()),),
                        5_000 if n == 3 else None) for n in range(5)]
    records = await bus.publish_batch(TOPIC, messages)
    assert producer.batches == [(1, 2), (1, 2), (1, 1)]  # full batches sent, the rest after
    assert [r.offset for r in records] == [0, 1, 2, 3, 4]
    assert [r.partition for r in records] == [1] * 5
    assert [r.headers for r in records] == [m.headers for m in messages]
    # The broker reports -1 for create times: each record keeps the stamp it was appended with.
    assert [r.timestamp_ms for r in records] == [2_001, 2_002, 2_001, 5_000, 2_001]


async def test_start_retries_the_connection_then_reports_the_broker() -> None:
    producer = ScriptedProducer(start_failures=1)
    await started_bus(producer)
    assert producer.start_calls == 2
    unreachable = ScriptedProducer(start_failures=99)
    with pytest.raises(BrokerUnavailableError,
                       match=r"connecting to Kafka at broker:9092 failed after 3 attempts"):
        await started_bus(unreachable)
    assert unreachable.stopped  # no connections or tasks left behind


async def test_missing_topic_is_named_and_nothing_is_sent() -> None:
    producer = ScriptedProducer()
    bus = await started_bus(producer)
    with pytest.raises(UnknownTopicError, match="'nope' does not exist"):
        await bus.publish("nope", b"k", b"v")
    assert producer.sent == []


async def test_tombstone_without_key_is_refused_before_sending() -> None:
    producer = ScriptedProducer()
    bus = await started_bus(producer)
    with pytest.raises(ValueError, match="neither key nor value"):
        await bus.publish_batch(TOPIC, [Message(b"k", b"v"), Message(None, None)])
    assert producer.sent == []


def test_retriable_classification() -> None:
    assert is_retriable(KafkaConnectionError())
    assert is_retriable(UnknownTopicOrPartitionError())  # aiokafka marks it retriable
    assert not is_retriable(MessageSizeTooLargeError())
    assert not is_retriable(ValueError("bad"))


# --- the topic's own limit --------------------------------------------------------------------

def sized(count: int, size: int, key: bytes | None = b"SA:1") -> list[Message]:
    return [Message(key, f"{n:04d}".encode() * (size // 4)) for n in range(count)]


async def test_a_topic_taking_smaller_batches_gets_batches_cut_at_its_limit() -> None:
    producer = ScriptedProducer(limits=[2_000])
    bus = await started_bus(producer)
    messages = sized(20, 400) + sized(5, 400, key=None)
    records = await bus.publish_batch(TOPIC, messages)
    assert [r.value for r in records] == [m.value for m in messages]
    assert producer.client.asked == [TOPIC]  # read once, on the first write
    # No batch above the topic's 2,000 bytes, none cut much below it either: each holds
    # as many 400-byte records as fit with the record format's own bytes.
    keyed = [count for partition, count in producer.batches
             if partition == partition_for_key(b"SA:1", 3)]
    assert sum(keyed) >= 20
    assert max(keyed) == 4
    assert all(count <= 4 for _, count in producer.batches)
    await bus.publish_batch(TOPIC, sized(1, 400))
    assert producer.client.asked == [TOPIC]


async def test_a_topic_taking_larger_batches_keeps_the_setting() -> None:
    producer = ScriptedProducer(limits=[10_000_000])
    bus = await started_bus(producer, producer_batch_bytes=2_000)
    await bus.publish_batch(TOPIC, sized(20, 400))
    assert max(count for _, count in producer.batches) == 4


@pytest.mark.parametrize("answer", [29, KafkaConnectionError("lost")],
                         ids=["authorization-failed", "request-failed"])
async def test_a_limit_that_cannot_be_read_leaves_the_setting(
        answer: int | BaseException) -> None:
    producer = ScriptedProducer(limits=[answer])
    bus = await started_bus(producer, producer_batch_bytes=2_000)
    records = await bus.publish_batch(TOPIC, sized(20, 400))
    assert len(records) == 20
    assert max(count for _, count in producer.batches) == 4


def renewing(producers: list[ScriptedProducer]) -> Callable[..., ScriptedProducer]:
    """A producer factory handing out ``producers`` in turn."""
    made = iter(producers)
    return lambda **config: next(made)


async def test_a_topic_limit_lowered_while_running_is_read_again_and_the_rest_written() -> None:
    # The broker refuses batches above 2,000 bytes from the second write on; the bus read
    # 1 MiB on the first, so its next batch is refused, and it reads 2,000 then.
    first = ScriptedProducer(fate=lambda attempt, _: MessageSizeTooLargeError()
                             if attempt > 1 else None, limits=[1_048_588, 2_000])
    second = ScriptedProducer(limits=first.limits)
    second._client = first.client
    bus = KafkaBus("broker:9092", retry=FAST, producer_factory=renewing([first, second]))
    await bus.start()
    await bus.publish_batch(TOPIC, sized(1, 400))
    records = await bus.publish_batch(TOPIC, sized(20, 400))
    assert [r.value for r in records] == [m.value for m in sized(20, 400)]
    # The refused batch's producer was replaced (its numbering of batches is off) and
    # stopped; the new one wrote everything in batches of the topic's new limit.
    assert first.stopped
    assert not second.stopped
    assert sum(count for _, count in second.batches) == 20
    assert max(count for _, count in second.batches) == 4
    assert first.client.asked == [TOPIC, TOPIC]


async def test_a_record_above_the_topics_limit_is_refused_with_the_limit_named() -> None:
    first = ScriptedProducer(fate=lambda attempt, m: MessageSizeTooLargeError()
                             if len(m.value or b"") > 2_000 else None, limits=[2_000])
    second = ScriptedProducer(limits=first.limits)
    bus = KafkaBus("broker:9092", retry=FAST, producer_factory=renewing([first, second]))
    await bus.start()
    with pytest.raises(PublishError) as caught:
        await bus.publish_batch(TOPIC, sized(1, 4_000))
    text = str(caught.value)
    assert "a record is larger than the 2000 bytes" in text
    assert "max.message.bytes" in text
    assert repr(TOPIC) in text
    assert "C2M_SYNC_KAFKA_PRODUCER_BATCH_BYTES" not in text  # lowering it would not help
    # The producer that sent the refused batch was replaced: the next write goes through.
    assert first.stopped
    assert len(await bus.publish_batch(TOPIC, sized(3, 400))) == 3
    assert second.batches == [(partition_for_key(b"SA:1", 3), 3)]


async def test_two_writes_refused_together_replace_the_producer_once() -> None:
    first = ScriptedProducer(fate=lambda attempt, m: MessageSizeTooLargeError()
                             if len(m.value or b"") > 2_000 else None, limits=[2_000])
    made = [first, ScriptedProducer(limits=first.limits), ScriptedProducer(limits=first.limits)]
    handed: list[ScriptedProducer] = []

    def factory(**config: Any) -> ScriptedProducer:
        handed.append(made[len(handed)])
        return handed[-1]

    bus = KafkaBus("broker:9092", retry=FAST, producer_factory=factory)
    await bus.start()
    outcomes = await asyncio.gather(
        bus.publish_batch(TOPIC, sized(1, 4_000)),
        bus.publish_batch(TOPIC, sized(1, 4_000, key=b"SA:2")), return_exceptions=True)
    assert all(isinstance(outcome, PublishError) for outcome in outcomes)
    # Both saw the first producer fail; one replaced it, the other found it replaced.
    assert handed == made[:2]
    assert first.stopped
    assert not made[1].stopped


async def test_a_write_whose_producer_lost_its_numbering_goes_through_a_new_one() -> None:
    # However the gap came about, the write is not failed for it: what is left is written
    # once more through a new producer.
    first = ScriptedProducer(fate=lambda attempt, _: OutOfOrderSequenceNumber())
    second = ScriptedProducer(limits=first.limits)
    bus = KafkaBus("broker:9092", retry=FAST, producer_factory=renewing([first, second]))
    await bus.start()
    records = await bus.publish_batch(TOPIC, sized(3, 400))
    assert [r.offset for r in records] == [0, 1, 2]
    assert first.stopped
    assert sum(count for _, count in second.batches) == 3


async def test_a_producer_that_loses_its_numbering_again_fails_the_write() -> None:
    made = [ScriptedProducer(fate=lambda attempt, _: OutOfOrderSequenceNumber())
            for _ in range(3)]
    bus = KafkaBus("broker:9092", retry=FAST, producer_factory=renewing(made))
    await bus.start()
    with pytest.raises(PublishError, match="OutOfOrderSequenceNumber"):
        await bus.publish_batch(TOPIC, sized(3, 400))
    # Replaced after each failure: the next write starts on a producer with no gap.
    assert [p.stopped for p in made] == [True, True, False]
