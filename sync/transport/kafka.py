"""The Kafka bus: aiokafka for records and offsets, kafka-python's admin client for topics.

Writes go through an idempotent producer with ``acks=all``: ``publish`` returns only after every
in-sync replica has the record, which is what lets the relay mark a sync request SENT. Keyed
records are handed to the producer in record batches per partition, placed where Kafka's
default partitioner places their keys (``sync.transport.partitioning``): record by record the
client's own bookkeeping cost about twice the CPU per record. A record batch holds up to
``kafka_producer_batch_bytes``, 256 KiB by default: aiokafka's own 16 KiB cut the relay's
batches into many small ones, and the broker's work goes by batches. A topic whose
``max.message.bytes`` is lower (read from the broker on the first write to it) gets batches cut
at its limit instead: a broker would refuse the larger batch, and aiokafka does not split a
refused batch as the Java client does. Broker
errors that may pass (connection lost, leader moved, request timed out, ...) are retried with
exponential backoff (tenacity); when the attempts are used up the caller gets a
``PublishError`` naming the topic and the last error.

Consumers are always assigned their partitions explicitly (no group rebalancing): a consumer
with a group id reads from, and commits to, that group's offsets; scale-out is by assigning
partition subsets. This is also the only group behaviour the in-process bus can match exactly.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka import TopicPartition as KafkaTopicPartition
from aiokafka.errors import (
    InvalidProducerEpoch,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    OutOfOrderSequenceNumber,
    RequestTimedOutError,
    UnknownProducerId,
)
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from sync.config.settings import DEFAULT_PRODUCER_BATCH_BYTES, ENV_PREFIX, KafkaSecurity
from sync.transport.bus import (
    DEFAULT_MAX_RECORDS,
    BrokerRefusedError,
    BrokerUnavailableError,
    BusError,
    Consumer,
    Headers,
    Message,
    PublishError,
    Record,
    RecordTooLargeError,
    TopicDescription,
    TopicOutcome,
    TopicPartition,
    TopicSpec,
    UnknownTopicError,
    check_message,
)
from sync.transport.partitioning import partition_for_key
from sync.transport.security import PLAINTEXT, aiokafka_options, connection_refusal
from sync.transport.topics import KafkaTopicAdmin

T = TypeVar("T")

log = logging.getLogger(__name__)

# DescribeConfigs' resource type of a topic (Kafka's ConfigResource.Type.TOPIC).
_TOPIC_RESOURCE = 2
MAX_MESSAGE_BYTES = "max.message.bytes"

# Failures after which the idempotent producer's numbering of batches no longer matches the
# broker's: the producer is replaced (``KafkaBus._renew_producer``).
_PRODUCER_STATE_LOST = (MessageSizeTooLargeError, OutOfOrderSequenceNumber, UnknownProducerId,
                        InvalidProducerEpoch)

_ALWAYS_RETRIED = (KafkaConnectionError, KafkaTimeoutError, NotLeaderForPartitionError,
                   RequestTimedOutError)


def is_retriable(error: BaseException) -> bool:
    """Broker errors that may pass by themselves; anything else is reported at once."""
    if isinstance(error, _ALWAYS_RETRIED):
        return True
    return isinstance(error, KafkaError) and bool(getattr(error, "retriable", False))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded attempts with exponential backoff between them."""

    attempts: int = 5
    initial_wait_s: float = 0.2
    max_wait_s: float = 5.0

    def retrying(self) -> AsyncRetrying:
        return AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.initial_wait_s, max=self.max_wait_s),
            retry=retry_if_exception(is_retriable),
            reraise=False,
        )


async def _with_retries(policy: RetryPolicy, what: str, action: Callable[[], Awaitable[T]],
                        failure: type[BusError]) -> T:
    try:
        async for attempt in policy.retrying():
            with attempt:
                return await action()
    except RetryError as exhausted:
        last = exhausted.last_attempt.exception()
        raise failure(f"{what} failed after {policy.attempts} attempts: "
                      f"{_explain(last)}") from last
    except KafkaError as error:  # not worth retrying: report it at once, in the same words
        raise failure(f"{what} failed: {_explain(error)}") from error
    raise AssertionError("unreachable: tenacity returns or raises")  # pragma: no cover


def _explain(error: BaseException | None) -> str:
    text = str(error)
    name = type(error).__name__
    # aiokafka's broker errors already start with their class name
    return text if text.startswith(name) or "] " + name in text else f"{name}: {text}"


async def _start(client: Any, what: str, policy: RetryPolicy) -> None:
    """Start an aiokafka client with retries; a client that never started is closed again."""
    try:
        await _with_retries(policy, what, client.start, BrokerUnavailableError)
    except BaseException:
        await client.stop()
        raise


class KafkaBus:
    """The ``Bus`` port on an Apache Kafka cluster."""

    def __init__(self, bootstrap_servers: str, *, retry: RetryPolicy | None = None,
                 client_id: str = "c2m-sync", security: KafkaSecurity = PLAINTEXT,
                 producer_batch_bytes: int = DEFAULT_PRODUCER_BATCH_BYTES,
                 producer_factory: Callable[..., Any] = AIOKafkaProducer) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.producer_batch_bytes = producer_batch_bytes
        self.retry = retry or RetryPolicy()
        self.security = security
        self._client_id = client_id
        self._producer_factory = producer_factory
        self._producer: Any = None
        self._offsets: AIOKafkaConsumer | None = None
        # Per topic written to: the record batch size its writes are cut at.
        self._batch_bytes: dict[str, int] = {}
        self._renewing = asyncio.Lock()
        self._security_options: dict[str, Any] | None = None
        self._admin = KafkaTopicAdmin(bootstrap_servers, client_id, security=security)

    def _client_options(self) -> dict[str, Any]:
        """Connection settings shared by every client of this bus. Built on first use, so a
        bad TLS file is reported where broker errors are (start, first request)."""
        if self._security_options is None:
            self._security_options = {"bootstrap_servers": self.bootstrap_servers,
                                      "client_id": self._client_id,
                                      **aiokafka_options(self.security)}
        return self._security_options

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap_servers}"

    @property
    def _connecting(self) -> str:
        return f"connecting to Kafka at {self.bootstrap_servers}"

    async def start(self) -> None:
        if self._producer is not None:
            return
        self._producer = await self._started_producer()

    async def _started_producer(self) -> Any:
        producer = self._producer_factory(
            **self._client_options(), enable_idempotence=True, acks="all", linger_ms=5,
            max_batch_size=self.producer_batch_bytes,
        )
        await self._start_client(producer)
        return producer

    async def _start_client(self, client: Any) -> None:
        try:
            await _start(client, self._connecting, self.retry)
        except BrokerUnavailableError as error:
            if self.security.security_protocol == "PLAINTEXT":
                raise
            refusal = await connection_refusal(self.bootstrap_servers, self.security)
            if refusal is None:
                raise
            raise BrokerRefusedError(f"{self._connecting}: {refusal}") from error

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        offsets, self._offsets = self._offsets, None
        if producer is not None:
            await producer.stop()
        if offsets is not None:
            await offsets.stop()

    # -- topics ------------------------------------------------------------------------------

    async def create_topics(self, specs: Sequence[TopicSpec]) -> list[TopicOutcome]:
        return await asyncio.to_thread(self._admin.create_topics, specs)

    async def describe_topics(self, names: Sequence[str] | None = None
                              ) -> list[TopicDescription]:
        return await asyncio.to_thread(self._admin.describe_topics, names)

    # -- publishing --------------------------------------------------------------------------

    async def publish(self, topic: str, key: bytes | None, value: bytes | None,
                      headers: Headers = (), timestamp_ms: int | None = None) -> Record:
        [record] = await self.publish_batch(topic, [Message(key, value, headers, timestamp_ms)])
        return record

    async def publish_batch(self, topic: str, messages: Sequence[Message]) -> list[Record]:
        """Send everything, then wait for every acknowledgement.

        On a retriable failure only what is needed is sent again: the failed records, plus
        every later record of a key that had a failure, so the last record per key on the
        topic is still the last one of the batch (duplicates are harmless: consumers apply
        by version).
        """
        for message in messages:
            check_message(topic, message)
        self._require_started()
        await self._check_topic(topic)
        if not messages:
            return []
        results: list[Record | None] = [None] * len(messages)
        sent_with: list[Any] = []  # the producer of the last attempt

        async def send_pending() -> None:
            pending = _to_resend(messages, results)
            sent_with[:] = [self._require_started()]
            sends = await _send_in_batches(sent_with[0], topic, messages, pending,
                                           self._batch_bytes[topic])
            outcomes = await asyncio.gather(*(future for _, future in sends),
                                            return_exceptions=True)
            first_error: BaseException | None = None
            for (written, _), outcome in zip(sends, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    first_error = first_error or outcome
                    continue
                for index, appended in written:
                    message = messages[index]
                    # A topic that stamps records itself reports the stamp (per batch); one
                    # with producers' create times reports -1, and the record has its own.
                    stamp = (message.timestamp_ms if message.timestamp_ms is not None
                             else appended.timestamp if outcome.timestamp == -1
                             else outcome.timestamp)
                    results[index] = Record(topic, outcome.partition,
                                            outcome.offset + appended.offset, message.key,
                                            message.value, tuple(message.headers), stamp)
            if first_error is not None:
                raise first_error

        what = f"publishing {len(messages)} record(s) to {topic!r}"
        for attempt in range(2):
            try:
                await _with_retries(self.retry, what, send_pending, PublishError)
                return [record for record in results if record is not None]
            except PublishError as error:
                cause = error.__cause__
                if not isinstance(cause, _PRODUCER_STATE_LOST):
                    raise
                # The producer's numbering is off: what is left goes once more, through a
                # new producer.
                await self._renew_producer(sent_with[0])
                if isinstance(cause, MessageSizeTooLargeError):
                    # Only worth it if the topic was given a lower limit since it was read.
                    used = self._batch_bytes.pop(topic)
                    if attempt > 0 or await self._check_topic(topic) >= used:
                        raise RecordTooLargeError(
                            f"{error}: {self._too_large(topic, used)}") from cause
                elif attempt > 0:
                    raise
        raise AssertionError("unreachable: the second attempt returns or raises")

    async def _renew_producer(self, failed: Any) -> None:
        """Replace the producer ``failed`` by a new one, unless another write has already.
        An idempotent producer numbers its record batches per partition; a batch the broker
        refused whole leaves a gap in that numbering, and aiokafka (unlike the Java client)
        neither closes it nor takes a new producer id, so every later write to the partition
        would fail with ``OutOfOrderSequenceNumber``. A new producer starts a new numbering."""
        async with self._renewing:
            if self._producer is not failed:
                return
            replaced, self._producer = failed, await self._started_producer()
        try:
            await replaced.stop()  # writes other tasks still have under way finish first
        except KafkaError as error:  # its numbering is what is being discarded
            log.info("stopping the replaced producer: %s", _explain(error))

    def _too_large(self, topic: str, batch_bytes: int) -> str:
        """What to do when the broker refused a record batch of at most ``batch_bytes`` as
        too large, and reading the topic's limit again gave nothing lower."""
        if batch_bytes < self.producer_batch_bytes:  # cut at the topic's own limit already
            return (f"a record is larger than the {batch_bytes} bytes {topic!r} takes (its "
                    f"{MAX_MESSAGE_BYTES}): it cannot be written until that limit is raised")
        return (f"the broker takes smaller record batches on {topic!r} than the "
                f"{batch_bytes} bytes this producer fills (its message.max.bytes, or the "
                f"topic's {MAX_MESSAGE_BYTES}): set {ENV_PREFIX}KAFKA_PRODUCER_BATCH_BYTES "
                "below that limit (a single record above it cannot be written at all)")

    async def _check_topic(self, topic: str) -> int:
        """The record batch size writes to ``topic`` are cut at; checks, on the first write,
        that the topic exists and reads its ``max.message.bytes``."""
        known = self._batch_bytes.get(topic)
        if known is not None:
            return known
        # Without this a write to a missing topic waits out the metadata timeout (the broker
        # does not auto-create topics) and then fails with an unhelpful timeout.
        if topic not in (await self._metadata()).topics():
            raise UnknownTopicError(topic)
        limit = await self._max_message_bytes(topic)
        batch_bytes = self.producer_batch_bytes
        if limit is not None and limit < batch_bytes:
            batch_bytes = limit
            log.info("record batches to %r are cut at %d bytes, the topic's %s "
                     "(%sKAFKA_PRODUCER_BATCH_BYTES is %d)", topic, limit, MAX_MESSAGE_BYTES,
                     ENV_PREFIX, self.producer_batch_bytes)
        self._batch_bytes[topic] = batch_bytes
        return batch_bytes

    async def _max_message_bytes(self, topic: str) -> int | None:
        """The topic's ``max.message.bytes`` as the broker applies it (the topic's own value,
        else the broker's ``message.max.bytes``); None when it cannot be read (a principal
        without DescribeConfigs on the topic, a broker that does not answer it): the writes
        then use the setting, and a refusal names it."""
        from aiokafka.protocol.admin import DescribeConfigsRequest

        client = self._require_started().client
        request = DescribeConfigsRequest([(_TOPIC_RESOURCE, topic, [MAX_MESSAGE_BYTES])])
        try:
            response = await client.send(client.get_random_node(), request)
        except KafkaError as error:
            log.info("could not read %s of %r (%s): record batches stay at %d bytes",
                     MAX_MESSAGE_BYTES, topic, _explain(error), self.producer_batch_bytes)
            return None
        return _configured_limit(response, topic)

    def _require_started(self) -> Any:
        if self._producer is None:
            raise BusError(f"the Kafka bus at {self.bootstrap_servers} is not started")
        return self._producer

    # -- offsets -----------------------------------------------------------------------------

    async def _offsets_client(self) -> AIOKafkaConsumer:
        if self._offsets is None:
            client = AIOKafkaConsumer(**self._client_options(), enable_auto_commit=False)
            await self._start_client(client)
            self._offsets = client
        return self._offsets

    async def _metadata(self) -> Any:
        """Fresh cluster metadata, so topics created since the last look are seen."""
        producer = self._require_started()
        return await _with_retries(
            self.retry, f"reading topic metadata from {self.bootstrap_servers}",
            producer.client.fetch_all_metadata, BrokerUnavailableError)

    async def _partitions(self, topic: str) -> list[KafkaTopicPartition]:
        partitions = (await self._metadata()).partitions_for_topic(topic)
        if not partitions:
            raise UnknownTopicError(topic)
        return [KafkaTopicPartition(topic, p) for p in sorted(partitions)]

    async def beginning_offsets(self, topic: str) -> dict[int, int]:
        client = await self._offsets_client()
        partitions = await self._partitions(topic)
        found = await self._asking(f"reading the beginning offsets of {topic!r}",
                                   lambda: client.beginning_offsets(partitions))
        return {tp.partition: offset for tp, offset in sorted(found.items())}

    async def end_offsets(self, topic: str) -> dict[int, int]:
        client = await self._offsets_client()
        partitions = await self._partitions(topic)
        found = await self._asking(f"reading the end offsets of {topic!r}",
                                   lambda: client.end_offsets(partitions))
        return {tp.partition: offset for tp, offset in sorted(found.items())}

    async def offsets_for_time(self, topic: str, timestamp_ms: int) -> dict[int, int]:
        client = await self._offsets_client()
        partitions = await self._partitions(topic)
        found = await self._asking(
            f"reading the offsets of {topic!r} by time",
            lambda: client.offsets_for_times({tp: timestamp_ms for tp in partitions}))
        ends = await self._asking(f"reading the end offsets of {topic!r}",
                                  lambda: client.end_offsets(partitions))
        return {tp.partition: ends[tp] if found.get(tp) is None else found[tp].offset
                for tp in partitions}

    async def _asking(self, what: str, action: Callable[[], Awaitable[T]]) -> T:
        """A request to the broker, retried; the client's errors become the port's."""
        return await _with_retries(self.retry, f"{what} at {self.bootstrap_servers}", action,
                                   BrokerUnavailableError)

    # -- consuming ---------------------------------------------------------------------------

    async def consumer(self, topics: Sequence[str], group_id: str | None = None
                       ) -> KafkaConsumer:
        partitions = [TopicPartition(tp.topic, tp.partition)
                      for topic in topics for tp in await self._partitions(topic)]
        client = AIOKafkaConsumer(
            **self._client_options(), group_id=group_id, enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await self._start_client(client)
        consumer = KafkaConsumer(self, client, tuple(topics), group_id)
        await consumer.assign(partitions)
        return consumer


async def _send_in_batches(producer: Any, topic: str, messages: Sequence[Message],
                           indexes: Sequence[int], batch_bytes: int
                           ) -> list[tuple[list[tuple[int, Any]], Any]]:
    """Queue ``messages[indexes]`` for sending in record batches per partition of at most
    ``batch_bytes`` (a record larger than that goes alone): a keyed record where Kafka's
    default partitioner places its key (the producer's own choice, made here once per batch:
    sending record by record cost about twice the CPU per record), a record without a key on
    a partition drawn at random, as aiokafka's partitioner draws it (going through the
    producer's own ``send`` it could share a batch cut at the producer's size, not the
    topic's). Returns, per send, the (index, appended record's metadata) it holds and its
    future (the batch's base offset and time stamp)."""
    partitions = sorted(await producer.partitions_for(topic))
    by_partition: dict[int, list[int]] = {}
    sends: list[tuple[list[tuple[int, Any]], Any]] = []
    for index in indexes:
        key = messages[index].key
        partition = (keyless_partition(partitions) if key is None
                     else partitions[partition_for_key(key, len(partitions))])
        by_partition.setdefault(partition, []).append(index)
    for partition, chosen in by_partition.items():
        batch = producer.create_batch()
        written: list[tuple[int, Any]] = []
        for index in chosen:
            appended = (_append(batch, messages[index])
                        if not written or batch.size() + _record_bound(messages[index])
                        <= batch_bytes else None)
            if appended is None:  # the batch is full: send it; the next takes any first record
                sends.append((written, await _close_and_send(producer, batch, topic, partition)))
                batch, written = producer.create_batch(), []
                appended = _append(batch, messages[index])
                assert appended is not None
            written.append((index, appended))
        sends.append((written, await _close_and_send(producer, batch, topic, partition)))
    return sends


def keyless_partition(partitions: Sequence[int]) -> int:
    """Where a record without a key goes: any partition, drawn at random."""
    return random.choice(partitions)


def _record_bound(message: Message) -> int:
    """At most the bytes ``message`` adds to a record batch: its key, value and headers, plus
    the longest varints of Kafka's record format (length, attributes, time stamp and offset
    deltas, the key's and value's lengths, the header count; each header's two lengths)."""
    return (36 + len(message.key or b"") + len(message.value or b"")
            + sum(10 + len(name.encode()) + len(value or b"") for name, value in message.headers))


def _configured_limit(response: Any, topic: str) -> int | None:
    """``max.message.bytes`` from a DescribeConfigs answer about ``topic``; None when the
    broker answered with an error or without the value."""
    for resource in response.resources:
        # (error code, error message, resource type, name, entries); later versions add more
        error_code, error_message, _, name, entries = resource[:5]
        if name != topic:
            continue
        if error_code != 0:
            log.info("could not read %s of %r (error %d: %s)", MAX_MESSAGE_BYTES, topic,
                     error_code, error_message)
            return None
        for entry in entries:
            if entry[0] == MAX_MESSAGE_BYTES and entry[1] is not None:
                try:
                    return int(entry[1])
                except ValueError:
                    return None
    return None


def _append(batch: Any, message: Message) -> Any:
    """The record's metadata in ``batch`` (its offset there, its time stamp); None when full."""
    return batch.append(key=message.key, value=message.value, timestamp=message.timestamp_ms,
                        headers=list(message.headers))


async def _close_and_send(producer: Any, batch: Any, topic: str, partition: int) -> Any:
    batch.close()
    return await producer.send_batch(batch, topic, partition=partition)


def _to_resend(messages: Sequence[Message], results: Sequence[Record | None]) -> list[int]:
    """Indexes to send (again): unacknowledged ones, and those after a key's first failure."""
    failed_from: dict[bytes, int] = {}
    for index, (message, result) in enumerate(zip(messages, results, strict=True)):
        if result is None and message.key is not None:
            failed_from.setdefault(message.key, index)
    return [index for index, (message, result) in enumerate(zip(messages, results, strict=True))
            if result is None
            or (message.key is not None and failed_from.get(message.key, index + 1) < index)]


class KafkaConsumer(Consumer):
    """A manually assigned ``AIOKafkaConsumer`` behind the ``Consumer`` port."""

    def __init__(self, bus: KafkaBus, client: AIOKafkaConsumer, topics: tuple[str, ...],
                 group_id: str | None) -> None:
        self._bus = bus
        self._client = client
        self._topics = topics
        self._group_id = group_id
        self._assigned: frozenset[TopicPartition] = frozenset()
        self._stopped = False

    @property
    def group_id(self) -> str | None:
        return self._group_id

    def assignment(self) -> frozenset[TopicPartition]:
        return self._assigned

    async def assign(self, partitions: Iterable[TopicPartition]) -> None:
        self._check_running()
        wanted = frozenset(partitions)
        for partition in wanted:
            if partition.topic not in self._topics:
                raise BusError(f"cannot assign {partition}: the consumer reads "
                               f"{', '.join(self._topics)}")
        self._client.assign([KafkaTopicPartition(*p) for p in wanted])
        self._assigned = wanted
        for partition in wanted:
            # Resolve the start position now (committed offset or earliest), as the
            # in-process bus does, instead of at the first fetch.
            await self._client.position(KafkaTopicPartition(*partition))

    async def seek(self, partition: TopicPartition, offset: int) -> None:
        self._check_assigned(partition)
        beginning = (await self._bus.beginning_offsets(partition.topic))[partition.partition]
        end = (await self._bus.end_offsets(partition.topic))[partition.partition]
        if not beginning <= offset <= end:
            raise BusError(f"cannot seek {partition} to offset {offset}: "
                           f"the partition holds offsets {beginning}..{end}")
        self._client.seek(KafkaTopicPartition(*partition), offset)

    async def position(self, partition: TopicPartition) -> int:
        self._check_assigned(partition)
        position: int = await self._client.position(KafkaTopicPartition(*partition))
        return position

    def known_ends(self) -> dict[TopicPartition, int]:
        self._check_running()
        # The high watermark every fetch response carries, kept by the client per partition.
        ends = {partition: self._client.highwater(KafkaTopicPartition(*partition))
                for partition in self._assigned}
        return {partition: end for partition, end in ends.items() if end is not None}

    async def getmany(self, timeout_ms: int = 0,
                      max_records: int | None = None) -> list[Record]:
        self._check_running()
        batches = await self._client.getmany(
            timeout_ms=timeout_ms,
            max_records=DEFAULT_MAX_RECORDS if max_records is None else max_records)
        return [Record(r.topic, r.partition, r.offset, r.key, r.value,
                       tuple((name, bytes(value)) for name, value in r.headers),
                       r.timestamp)
                for tp in sorted(batches) for r in batches[tp]]

    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        self._require_group("commit")
        if offsets is None:
            offsets = {p: await self.position(p) for p in self._assigned}
        for partition in offsets:
            self._check_assigned(partition)
        committing = {KafkaTopicPartition(*p): offset for p, offset in offsets.items()}
        await self._bus._asking(f"committing offsets of {', '.join(self._topics)}",
                                lambda: self._client.commit(committing))

    async def committed(self, partition: TopicPartition) -> int | None:
        self._require_group("read committed offsets")
        offset: int | None = await self._client.committed(KafkaTopicPartition(*partition))
        return offset

    async def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            await self._client.stop()

    def _require_group(self, action: str) -> None:
        self._check_running()
        if self._group_id is None:
            raise BusError(f"cannot {action}: the consumer of {', '.join(self._topics)} "
                           "reads without a consumer group")

    def _check_assigned(self, partition: TopicPartition) -> None:
        self._check_running()
        if partition not in self._assigned:
            raise BusError(f"partition {partition} is not assigned to this consumer")

    def _check_running(self) -> None:
        if self._stopped:
            raise BusError(f"the consumer of {', '.join(self._topics)} is stopped")
