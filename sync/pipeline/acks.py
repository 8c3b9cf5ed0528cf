"""The CCB acknowledgement consumer: MDM's answers set the state of the sync requests.

Acknowledgements are read in the consumer group ``c2m-sync-ccb`` and applied a batch at a time
in one CCB transaction (:meth:`~sync.storage.outbox.SqlOutbox.acknowledge`), which also records,
per partition, the offset of the last answer applied (``ccb_ack_positions``). The group offsets
are committed after that transaction, for monitoring tools and for partitions the database has
not recorded yet; the database's positions are the truth. Once the consumer is assigned its
partitions, again after the CCB database was out of reach, and every 30 s while it has nothing
to read (a database that crashed and came back meanwhile refused no batch), the consumer
compares them with where it is about to read before it reads: a partition the database has
applied less of (it lost transactions it had confirmed: a crash with
``synchronous_commit = off``, a failover to a standby that was behind) is sought back to just
after its stored position, with a warning, and the lost answers are read and applied again.
Every batch also checks, in its own transaction, the stored positions of its partitions: a
loss followed by newer answers is found by the next batch of the same partition, before the
positions would move on past the hole (``docs/sync-pipeline.md``).

Reading an answer again is harmless: an answer to a request that has already moved on is stale
and ignored. An acknowledgement that cannot be decoded goes to the dead-letter topic with its
error and source position, and the consumer goes on. A CCB database out of reach is waited out:
the batch is read again once the database answers (``run``). So is a broker out of reach: a
batch whose dead letters or group commit did not reach it is read again once it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from sync.clock import Clock
from sync.config.settings import TopicNames
from sync.mapping.codec import DecodeError, decode_acknowledgement, encode
from sync.mapping.messages import Acknowledgement
from sync.storage.common import first_line, is_unavailable
from sync.storage.outbox import AckPositions, LostAnswersError, SqlOutbox
from sync.transport.bus import (
    BrokerUnavailableError,
    Bus,
    BusError,
    Consumer,
    PublishError,
    Record,
    TopicPartition,
)
from sync.worker.dead_letters import dead_letter_for, decode_failure

log = logging.getLogger(__name__)

GROUP_ID = "c2m-sync-ccb"
OUTAGE_WAIT_S = 0.5
OUTAGE_MAX_WAIT_S = 10.0
# How often an idle consumer compares its positions with the CCB database's: a database that
# crashes and comes back while there is nothing to read refuses no batch, so nothing else
# would notice that it lost answers it had confirmed.
IDLE_CHECK_S = 30.0


@dataclass
class AckConsumerReport:
    read: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    todos_raised: int = 0
    dead_lettered: int = 0
    unknown_requests: int = 0
    read_again: int = 0  # partitions sought back: the CCB database had lost answers of them

    def add(self, other: AckConsumerReport) -> None:
        self.read += other.read
        self.verdicts.update(other.verdicts)
        self.todos_raised += other.todos_raised
        self.dead_lettered += other.dead_lettered
        self.unknown_requests += other.unknown_requests
        self.read_again += other.read_again


class AckConsumer:
    def __init__(self, outbox: SqlOutbox, bus: Bus, topics: TopicNames, clock: Clock, *,
                 group_id: str = GROUP_ID, max_records: int = 500,
                 idle_check_s: float = IDLE_CHECK_S) -> None:
        self.outbox = outbox
        self.bus = bus
        self.topics = topics
        self.clock = clock
        self.group_id = group_id
        self.max_records = max_records
        self._consumer: Consumer | None = None
        # Whether the next batch is compared with the database's positions: once the consumer
        # is assigned its partitions, and after the database refused a batch.
        self._check_positions = True
        self.idle_check_s = idle_check_s
        self._compared_at = time.monotonic()
        # The topic's oldest offsets as the last comparison found them: what a batch's own
        # check reads again from at the earliest (a loss it finds is confirmed by a full
        # comparison, which asks the broker again).
        self._beginnings: dict[int, int] = {}

    async def _ensure_consumer(self) -> Consumer:
        if self._consumer is None:
            self._consumer = await self.bus.consumer([self.topics.acknowledgements],
                                                     group_id=self.group_id)
            self._check_positions = True
        return self._consumer

    async def _resume_from_database(self, consumer: Consumer) -> int:
        """Compare where the consumer is about to read with what the CCB database has applied
        (in a transaction that applies no answer): a partition the database has applied less
        of lost transactions it had confirmed, and is sought back to just after its last
        answer there (or to the oldest answer still on the topic); a partition it never
        recorded reads on from the consumer group's committed offset, which is recorded as its
        position. Returns how many partitions were sought back."""
        topic = self.topics.acknowledgements
        self._compared_at = time.monotonic()
        beginning = await self.bus.beginning_offsets(topic)
        self._beginnings = dict(beginning)
        read_from = {partition.partition: (beginning.get(partition.partition, 0),
                                           await consumer.position(partition))
                     for partition in sorted(consumer.assignment()) if partition.topic == topic}
        try:
            await asyncio.to_thread(self.outbox.acknowledge, [], self.clock.now(),
                                    AckPositions(topic, {}, read_from))
        except LostAnswersError as lost:
            for partition, (again, _) in lost.partitions.items():
                await consumer.seek(TopicPartition(topic, partition), again)
            log.warning("acknowledgements: %s; reading them again", lost)
            self._check_positions = False
            return len(lost.partitions)
        self._check_positions = False
        return 0

    async def consume_batch(self, timeout_ms: int = 200) -> AckConsumerReport:
        """Read and apply what is there (waiting up to ``timeout_ms`` when nothing is).

        When the CCB database cannot be reached the consumer is sought back to the batch's
        first records, so that the batch is read again on the next call, and the error is
        raised; nothing of the batch has been dead-lettered or committed by then.

        Before reading, once the consumer is assigned its partitions and again after the
        database refused a batch, the database's positions are compared with the consumer's
        (:meth:`_resume_from_database`). Every batch is also checked against them in its own
        transaction: a partition whose answers the database has applied less of than where the
        batch was read from (it lost a batch in a crash that refused no call, and the consumer
        read on) makes the batch be read again after a full comparison."""
        consumer = await self._ensure_consumer()
        report = AckConsumerReport()
        if self._check_positions:
            report.read_again = await self._resume_from_database(consumer)
        topic = self.topics.acknowledgements
        read_from = await self._positions(consumer)
        records = await consumer.getmany(timeout_ms=timeout_ms, max_records=self.max_records)
        report.read = len(records)
        if not records:
            return report
        acks: list[Acknowledgement] = []
        undecodable: list[tuple[Record, DecodeError]] = []
        last: dict[int, int] = {}
        for record in records:
            last[record.partition] = max(last.get(record.partition, -1), record.offset)
            try:
                acks.append(decode_acknowledgement(record.value or b""))
            except DecodeError as error:
                undecodable.append((record, error))
        # The positions of every record read, undecodable ones included (they are dead-lettered
        # below): a batch of those alone is recorded too.
        checked = {partition: (self._beginnings.get(partition, 0), read_from[partition])
                   for partition in last if partition in read_from}
        try:
            applied = await asyncio.to_thread(
                self.outbox.acknowledge, acks, self.clock.now(),
                AckPositions(topic, last, checked))
        except LostAnswersError as lost:
            await _rewind(consumer, records)
            self._check_positions = True  # the full comparison seeks back to the lost answers
            log.warning("acknowledgements: %s; comparing every position again", lost)
            return report
        except Exception:
            await _rewind(consumer, records)
            # The database may come back without batches it had confirmed before this one.
            self._check_positions = True
            raise
        report.verdicts.update(applied.verdicts)
        report.todos_raised = applied.todos_raised
        report.unknown_requests = len(applied.unknown)
        for request_id in applied.unknown:
            log.warning("acknowledgement for unknown sync request %s ignored", request_id)
        try:
            for record, failure in undecodable:
                await self._dead_letter(record, failure)
                report.dead_lettered += 1
            await consumer.commit()
        except BusError:
            # Applied, but a dead letter or the commit did not reach the broker: the batch is
            # read again once it is back (answers applied twice change nothing), so that no
            # undecodable answer misses the dead-letter topic.
            await _rewind(consumer, records)
            raise
        return report

    async def _positions(self, consumer: Consumer) -> dict[int, int]:
        """Where the consumer reads next, per partition of the acknowledgement topic."""
        topic = self.topics.acknowledgements
        return {partition.partition: await consumer.position(partition)
                for partition in consumer.assignment() if partition.topic == topic}

    async def _dead_letter(self, record: Record, error: DecodeError) -> None:
        failure, problems, message = decode_failure(error)
        letter = dead_letter_for(
            topic=record.topic, partition=record.partition, offset=record.offset,
            key=record.key, value=record.value, timestamp_ms=record.timestamp_ms,
            failure=failure, problems=problems, message=message, at=self.clock.now())
        await self.bus.publish(self.topics.dead_letters, record.key, encode(letter))
        log.error("undecodable acknowledgement at %s[%d]@%d dead-lettered: %s",
                  record.topic, record.partition, record.offset, message)

    async def drain(self, max_batches: int = 1_000_000) -> AckConsumerReport:
        """Apply every acknowledgement already on the topic."""
        total = AckConsumerReport()
        for _ in range(max_batches):
            report = await self.consume_batch(timeout_ms=0)
            if not report.read:
                break
            total.add(report)
        return total

    async def drain_to(self, ends: Mapping[int, int], wait_ms: int = 200,
                       timeout_s: float = 30.0) -> AckConsumerReport:
        """Apply every answer before ``ends`` (per partition of the acknowledgement topic, end
        offsets read after the answers were written). On a real broker a record just written
        can take a moment to reach a consumer's fetch: reading goes on, ``wait_ms`` at a time,
        until the consumer is past them, for at most ``timeout_s``."""
        consumer = await self._ensure_consumer()
        total = AckConsumerReport()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            positions = await self._positions(consumer)
            if all(positions.get(partition, end) >= end for partition, end in ends.items()):
                break
            total.add(await self.consume_batch(timeout_ms=wait_ms))
        return total

    async def run(self, stop: asyncio.Event) -> AckConsumerReport:
        """Consume until ``stop`` is set. A CCB database or a broker out of reach is waited
        out with growing waits (0.5 s to 10 s) and the batch read again; any other error stops
        it.
        While idle, the positions are compared with the database's every ``idle_check_s``."""
        total = AckConsumerReport()
        outage_wait_s = OUTAGE_WAIT_S
        while not stop.is_set():
            try:
                report = await self.consume_batch(timeout_ms=200)
                total.add(report)
                if not report.read and time.monotonic() - self._compared_at >= self.idle_check_s:
                    self._check_positions = True  # idle: compare with the database again
            except Exception as error:
                if isinstance(error, (BrokerUnavailableError, PublishError)):
                    # The broker is down or restarting (the clients reconnect by themselves):
                    # waited out like the database, never a reason to stop the worker.
                    log.warning("acknowledgements: the broker is unavailable, reading again in "
                                "%.1f s: %s", outage_wait_s, first_line(error))
                elif is_unavailable(error):
                    log.warning("acknowledgements: the CCB database is unavailable, reading "
                                "the batch again in %.1f s: %s", outage_wait_s,
                                first_line(error))
                else:
                    raise
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), outage_wait_s)
                outage_wait_s = min(outage_wait_s * 2, OUTAGE_MAX_WAIT_S)
                continue
            outage_wait_s = OUTAGE_WAIT_S
        return total

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None


async def _rewind(consumer: Consumer, records: list[Record]) -> None:
    """Seek each partition of ``records`` back to its first record in them."""
    first: dict[TopicPartition, int] = {}
    for record in records:
        partition = TopicPartition(record.topic, record.partition)
        first[partition] = min(first.get(partition, record.offset), record.offset)
    for partition, offset in first.items():
        await consumer.seek(partition, offset)
