"""The Bus port: keyed, partitioned, offset-addressed topics, as Kafka has them.

Two adapters implement it with the same semantics and pass one contract suite
(``tests/contract/test_bus.py``): ``kafka://host:port`` (aiokafka, kafka-python's admin client)
and ``memory://name`` (in-process, for the demo and fast tests). ``bus_for(url)`` picks one;
``bus_of(settings)`` is what every entry point uses: the URL with the settings' Kafka options.

Offsets follow Kafka's conventions everywhere: a committed offset and a consumer position are
the offset of the *next* record to read, and an end offset is the offset the next write gets.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from sync.config.settings import KafkaSecurity, Settings

Headers = tuple[tuple[str, bytes], ...]

# The most records one ``getmany`` returns when the caller sets no bound (Kafka's
# ``max.poll.records`` default), so both adapters hand out batches of the same size.
DEFAULT_MAX_RECORDS = 500


class TopicPartition(NamedTuple):
    topic: str
    partition: int

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]"


@dataclass(frozen=True, slots=True)
class Record:
    """One record as stored on a partition. ``value`` None is a tombstone (compacted topics)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp_ms: int

    @property
    def topic_partition(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)

    def header(self, name: str) -> bytes | None:
        """The last value of header ``name``, or None."""
        found = None
        for key, value in self.headers:
            if key == name:
                found = value
        return found


@dataclass(frozen=True, slots=True)
class Message:
    """A record to publish; the bus chooses its partition from the key."""

    key: bytes | None
    value: bytes | None
    headers: Headers = ()
    timestamp_ms: int | None = None


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """How a topic must be created. ``min_compaction_lag_ms`` only matters when compacted."""

    name: str
    partitions: int
    compacted: bool = False
    min_compaction_lag_ms: int | None = None

    def kafka_configs(self) -> dict[str, str]:
        configs = {"cleanup.policy": "compact" if self.compacted else "delete"}
        if self.compacted and self.min_compaction_lag_ms is not None:
            configs["min.compaction.lag.ms"] = str(self.min_compaction_lag_ms)
        return configs


@dataclass(frozen=True, slots=True)
class TopicDescription:
    """A topic as the bus has it: partition count and the settings we care about."""

    name: str
    partitions: int
    compacted: bool
    configs: Mapping[str, str]


class TopicStatus(enum.StrEnum):
    CREATED = "created"
    EXISTS = "exists"
    DIFFERS = "differs"


@dataclass(frozen=True, slots=True)
class TopicOutcome:
    """What ``create_topics`` did with one spec; ``problems`` say how an existing topic differs."""

    spec: TopicSpec
    status: TopicStatus
    problems: tuple[str, ...] = ()


class BusError(Exception):
    """A transport failure reported to the caller with what was being done and where."""


class UnknownTopicError(BusError):
    def __init__(self, topic: str) -> None:
        super().__init__(
            f"topic {topic!r} does not exist (create it with `c2m-sync topics create`)")
        self.topic = topic


class PublishError(BusError):
    """A write the broker did not acknowledge, after every retry."""


class RecordTooLargeError(PublishError):
    """The broker refused a record as larger than the topic takes (Kafka's
    ``max.message.bytes``): no retry can write it until the topic's limit is raised. Records
    of the same write may have been written before the refusal."""


class BrokerUnavailableError(BusError):
    """The broker could not be reached, after every retry."""


class BrokerRefusedError(BrokerUnavailableError):
    """The broker was reached but refused the client: wrong credentials, a TLS certificate the
    client does not trust, a SASL mechanism it does not enable. Retrying will not help."""


def check_message(topic: str, message: Message) -> None:
    """Reject what Kafka rejects: a record needs a key or a value (a tombstone needs a key)."""
    if message.key is None and message.value is None:
        raise ValueError(f"record for topic {topic!r} has neither key nor value; "
                         "a tombstone needs the key it deletes")


class Consumer(Protocol):
    """Reads records of some topics' partitions from a position, optionally for a group.

    A new consumer is assigned every partition of its topics and starts, per partition, at the
    group's committed offset or else at the beginning. With ``group_id`` None it reads without
    a group (replay, reconcile) and ``commit``/``committed`` are errors.
    """

    @property
    def group_id(self) -> str | None: ...

    def assignment(self) -> frozenset[TopicPartition]: ...

    async def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Read only ``partitions`` (of the consumer's topics), from the committed offsets."""

    async def seek(self, partition: TopicPartition, offset: int) -> None:
        """Next read of ``partition`` starts at ``offset`` (between beginning and end)."""

    async def position(self, partition: TopicPartition) -> int: ...

    def known_ends(self) -> dict[TopicPartition, int]:
        """Per assigned partition a read has looked at, its end offset as that read saw it,
        without asking the broker: what lag is measured against. Never beyond the current end;
        after a read returned records of a partition, at least the offset after the last of
        them. Partitions not looked at yet are left out; ``Bus.end_offsets`` asks the broker
        for the current ends."""

    async def getmany(self, timeout_ms: int = 0,
                      max_records: int | None = None) -> list[Record]:
        """Records after the current positions, waiting up to ``timeout_ms`` when none are
        there yet. In offset order within a partition; positions advance past them."""

    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        """Store next-offsets for the group; None commits the current positions."""

    async def committed(self, partition: TopicPartition) -> int | None: ...

    async def stop(self) -> None: ...


class Bus(Protocol):
    """Topics with partitions, keys, offsets and consumer positions."""

    @property
    def url(self) -> str: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def create_topics(self, specs: Sequence[TopicSpec]) -> list[TopicOutcome]:
        """Create missing topics; an existing one is left as it is and compared with its spec."""

    async def describe_topics(self, names: Sequence[str] | None = None
                              ) -> list[TopicDescription]:
        """The named topics that exist (every non-internal topic when None), sorted by name."""

    async def publish(self, topic: str, key: bytes | None, value: bytes | None,
                      headers: Headers = (), timestamp_ms: int | None = None) -> Record:
        """Write one record; returns once the broker acknowledged it, with its offset."""

    async def publish_batch(self, topic: str, messages: Sequence[Message]) -> list[Record]:
        """Write many records at once, in order per key; returns once every one is
        acknowledged, the records in the order of ``messages``."""

    async def beginning_offsets(self, topic: str) -> dict[int, int]: ...

    async def end_offsets(self, topic: str) -> dict[int, int]:
        """Per partition, the offset the next record written will get."""

    async def offsets_for_time(self, topic: str, timestamp_ms: int) -> dict[int, int]:
        """Per partition, the first offset whose timestamp is at or after ``timestamp_ms``
        (the end offset when there is none)."""

    async def consumer(self, topics: Sequence[str], group_id: str | None = None) -> Consumer:
        """A started consumer of every partition of ``topics``."""


def bus_for(url: str, security: KafkaSecurity | None = None, *,
            producer_batch_bytes: int | None = None) -> Bus:
    """The adapter for ``url``: ``memory://[name]`` (one shared bus per name in this process)
    or ``kafka://host:port[,host:port]``, connecting with ``security`` (the settings'
    ``kafka_security``; plaintext when None) and record batches of up to
    ``producer_batch_bytes`` (the adapter's default, which is the settings', when None). The
    in-process bus has no connections to secure and no batches."""
    if url.startswith("memory://"):
        from sync.transport.memory import memory_bus

        return memory_bus(url.removeprefix("memory://").strip("/"))
    if url.startswith("kafka://"):
        from sync.config.settings import kafka_servers
        from sync.transport.kafka import KafkaBus

        try:  # the settings' own check, for a URL that did not come through them
            servers = kafka_servers(url)
        except ValueError as error:
            raise ValueError(f"{error} (got {url!r})") from None
        options: dict[str, Any] = {}  # what is not given keeps the adapter's own default
        if security is not None:
            options["security"] = security
        if producer_batch_bytes is not None:
            options["producer_batch_bytes"] = producer_batch_bytes
        return KafkaBus(servers, **options)
    raise ValueError(f"broker URL {url!r} must start with memory:// or kafka://")


def bus_of(settings: Settings) -> Bus:
    """The bus the settings name, with their Kafka security and producer options: what every
    entry point connects with, so that none of them reaches the broker differently."""
    return bus_for(settings.broker_url, settings.kafka_security,
                   producer_batch_bytes=settings.kafka_producer_batch_bytes)
