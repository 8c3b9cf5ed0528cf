"""The CCB acknowledgement consumer: MDM's answers set the state of the sync requests.

Acknowledgements are read in the consumer group ``c2m-sync-ccb`` and applied a batch at a time
in one CCB transaction (:meth:`~sync.storage.outbox.SqlOutbox.acknowledge`); the group offsets
are committed only after that transaction. A crash in between means the batch is read again,
which is harmless: an answer to a request that has already moved on is stale and ignored. An
acknowledgement that cannot be decoded goes to the dead-letter topic with its error and source
position, and the consumer goes on. A CCB database out of reach is waited out: the batch is
read again once the database answers (``run``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from dataclasses import dataclass, field

from sync.clock import Clock
from sync.config.settings import TopicNames
from sync.mapping.codec import DecodeError, decode_acknowledgement, encode
from sync.mapping.messages import Acknowledgement
from sync.storage.common import first_line, is_unavailable
from sync.storage.outbox import SqlOutbox
from sync.transport.bus import Bus, Consumer, Record, TopicPartition
from sync.worker.dead_letters import dead_letter_for, decode_failure

log = logging.getLogger(__name__)

GROUP_ID = "c2m-sync-ccb"
OUTAGE_WAIT_S = 0.5
OUTAGE_MAX_WAIT_S = 10.0


@dataclass
class AckConsumerReport:
    read: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    todos_raised: int = 0
    dead_lettered: int = 0
    unknown_requests: int = 0

    def add(self, other: AckConsumerReport) -> None:
        self.read += other.read
        self.verdicts.update(other.verdicts)
        self.todos_raised += other.todos_raised
        self.dead_lettered += other.dead_lettered
        self.unknown_requests += other.unknown_requests


class AckConsumer:
    def __init__(self, outbox: SqlOutbox, bus: Bus, topics: TopicNames, clock: Clock, *,
                 group_id: str = GROUP_ID, max_records: int = 500) -> None:
        self.outbox = outbox
        self.bus = bus
        self.topics = topics
        self.clock = clock
        self.group_id = group_id
        self.max_records = max_records
        self._consumer: Consumer | None = None

    async def _ensure_consumer(self) -> Consumer:
        if self._consumer is None:
            self._consumer = await self.bus.consumer([self.topics.acknowledgements],
                                                     group_id=self.group_id)
        return self._consumer

    async def consume_batch(self, timeout_ms: int = 200) -> AckConsumerReport:
        """Read and apply what is there (waiting up to ``timeout_ms`` when nothing is).

        When the CCB database cannot be reached the consumer is sought back to the batch's
        first records, so that the batch is read again on the next call, and the error is
        raised; nothing of the batch has been dead-lettered or committed by then."""
        consumer = await self._ensure_consumer()
        records = await consumer.getmany(timeout_ms=timeout_ms, max_records=self.max_records)
        report = AckConsumerReport(read=len(records))
        if not records:
            return report
        acks: list[Acknowledgement] = []
        undecodable: list[tuple[Record, DecodeError]] = []
        for record in records:
            try:
                acks.append(decode_acknowledgement(record.value or b""))
            except DecodeError as error:
                undecodable.append((record, error))
        if acks:
            try:
                applied = await asyncio.to_thread(self.outbox.acknowledge, acks,
                                                  self.clock.now())
            except Exception:
                await _rewind(consumer, records)
                raise
            report.verdicts.update(applied.verdicts)
            report.todos_raised = applied.todos_raised
            report.unknown_requests = len(applied.unknown)
            for request_id in applied.unknown:
                log.warning("acknowledgement for unknown sync request %s ignored", request_id)
        for record, failure in undecodable:
            await self._dead_letter(record, failure)
            report.dead_lettered += 1
        await consumer.commit()
        return report

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

    async def run(self, stop: asyncio.Event) -> AckConsumerReport:
        """Consume until ``stop`` is set. A CCB database out of reach is waited out with
        growing waits (0.5 s to 10 s) and the batch read again; any other error stops it."""
        total = AckConsumerReport()
        outage_wait_s = OUTAGE_WAIT_S
        while not stop.is_set():
            try:
                total.add(await self.consume_batch(timeout_ms=200))
            except Exception as error:
                if not is_unavailable(error):
                    raise
                log.warning("acknowledgements: the CCB database is unavailable, reading the "
                            "batch again in %.1f s: %s", outage_wait_s, first_line(error))
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
