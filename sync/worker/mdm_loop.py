"""The MDM worker over the ``Bus`` port (``memory://`` or ``kafka://``): no faust.

One consumer without a group reads every partition of the sync topic from where the MDM store
says it stopped (:mod:`sync.worker.resume`). Each poll's records are processed in a worker
thread (the store is blocking) as one batch, one store transaction; after each batch the
answers it stored are published (:mod:`sync.worker.publisher`). On start, what a
crash left unpublished is published before anything is read.

A store outage stops the loop on the batch that failed: the store is asked again with growing
waits until it answers or the worker is told to stop, and nothing is read meanwhile. Then the
consumer is sought back to the store's consumed positions and reads on from there, so a
database that lost confirmed transactions in a crash has them applied again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from sync.clock import Clock
from sync.config.settings import Settings
from sync.mdm.ports import ConsumerStorePort, OutboxEntry
from sync.storage.common import first_line
from sync.transport.bus import Bus, Consumer, TopicPartition
from sync.worker.housekeeping import DailyPurge
from sync.worker.mdm_processor import (
    ApplyRetry,
    MdmProcessor,
    SourceRecord,
    StoreUnavailableError,
)
from sync.worker.publisher import OutboxPublisher
from sync.worker.resume import behind_processed, resume_offsets
from sync.worker.stats import Verdict, WorkerStats

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LoopTiming:
    """Bounded waits: how long one poll waits for records, and the backoff of a store outage."""

    poll_ms: int = 200
    max_records: int = 500
    outage_wait_s: float = 0.5
    outage_max_wait_s: float = 10.0


class MdmBusWorker:
    def __init__(self, bus: Bus, store: ConsumerStorePort, settings: Settings, clock: Clock, *,
                 stats: WorkerStats | None = None, retry: ApplyRetry | None = None,
                 timing: LoopTiming | None = None) -> None:
        self.bus = bus
        self.topic = settings.topics.sync_requests
        self.stats = stats or WorkerStats()
        self.processor = MdmProcessor(store, clock, retry=retry, stats=self.stats)
        self.publisher = OutboxPublisher(store, bus.publish_batch, settings, clock, self.stats)
        self.timing = timing or LoopTiming()
        self._store = store
        self._clock = clock
        self._consumer: Consumer | None = None
        self.housekeeping = DailyPurge(store.purge_history, clock,
                                       "published acknowledgements")

    async def start(self) -> None:
        """Publish what a crash left unpublished, then position a consumer after the last
        consumed record of every partition."""
        await self.publisher.publish_pending()
        consumer = await self.bus.consumer([self.topic])
        try:
            consumed = await asyncio.to_thread(self._store.last_positions, self.topic)
            ends = await self.bus.end_offsets(self.topic)
            offsets = resume_offsets(self.topic, consumed,
                                     await self.bus.beginning_offsets(self.topic), ends)
            for partition, offset in offsets.items():
                await consumer.seek(TopicPartition(self.topic, partition), offset)
        except BaseException:
            await consumer.stop()
            raise
        self._note_ends(ends)
        self._consumer = consumer
        self.stats.recovered()

    async def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    async def run(self, stop_event: asyncio.Event) -> None:
        """Consume until ``stop_event`` is set."""
        await self.start()
        try:
            while not stop_event.is_set():
                await self.housekeeping.run_if_due()
                await self.poll(stop_event, self.timing.poll_ms)
        finally:
            await self.stop()

    async def drain(self, stop_event: asyncio.Event | None = None) -> dict[Verdict, int]:
        """Consume everything on the topic now (up to the end offsets as they are when called)
        and publish the answers; returns the verdict counts of this drain. Starts the worker
        when it is not started."""
        if self._consumer is None:
            await self.start()
        stop = stop_event or asyncio.Event()
        before = dict(self.stats.counts)
        ends = await self.bus.end_offsets(self.topic)
        while not stop.is_set() and not await self._reached(ends):
            await self.poll(stop, self.timing.poll_ms)
        await self.publisher.publish_pending()
        return {verdict: count - before[verdict] for verdict, count in self.stats.counts.items()}

    async def poll(self, stop_event: asyncio.Event, timeout_ms: int) -> int:
        """Read one batch, process it, publish the answers; returns how many were read."""
        consumer = self._require_started()
        records = await consumer.getmany(timeout_ms=timeout_ms,
                                         max_records=self.timing.max_records)
        answers: list[OutboxEntry] | None = []
        if records:
            consumed, answers = await self._process(
                [SourceRecord.from_bus(r) for r in records], stop_event)
            if not consumed:
                return len(records)  # stopping during an outage: the batch was not consumed
            # Lag is measured against the ends the fetches brought back: asking the broker
            # after every batch cost a metadata and an offsets request per batch.
            self._note_ends({tp.partition: end for tp, end in consumer.known_ends().items()
                             if tp.topic == self.topic})
        await self._publish(answers)
        return len(records)

    async def _process(self, records: list[SourceRecord], stop_event: asyncio.Event
                       ) -> tuple[bool, list[OutboxEntry] | None]:
        """Process ``records`` (one transaction); False if told to stop during a store outage,
        else True with the answers the batch stored (None when they are not known: after an
        outage, what the store kept is read from its outboxes).

        After an outage nothing held in memory is trusted: once the store answers again, the
        consumer is sought back to what the store says it has consumed and the records are
        read again from there (those already answered are recognised by position). Retrying
        the batch in hand would not do: a database that crashed may have lost the last
        transactions it had confirmed (``synchronous_commit = off``, a failover to a standby
        that was behind), and reading on after them would skip their records for good."""
        try:
            processed = await asyncio.to_thread(self.processor.process_batch_answered, records)
        except StoreUnavailableError as error:
            outage = error
        else:
            self.stats.recovered()
            return True, processed.answers
        wait = self.timing.outage_wait_s
        while True:
            self.stats.failed(str(outage), self._clock.now())
            log.warning("%s; reading again from what the store has consumed in %.1f s",
                        outage, wait)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop_event.wait(), wait)
            if stop_event.is_set():
                return False, None
            wait = min(wait * 2, self.timing.outage_max_wait_s)
            try:
                consumed = await asyncio.to_thread(self._store.last_positions, self.topic)
            except Exception as error:  # still down: any failure to read is the outage
                outage = StoreUnavailableError(f"MDM store unreachable: {first_line(error)}")
                continue
            await self._reposition(consumed)
            self.stats.recovered()
            return True, None

    async def _reposition(self, consumed: dict[int, int]) -> None:
        """Seek every partition to just after the store's consumed position, saying so when
        the store is behind what this worker had processed (it lost confirmed work)."""
        consumer = self._require_started()
        offsets = resume_offsets(self.topic, consumed,
                                 await self.bus.beginning_offsets(self.topic),
                                 await self.bus.end_offsets(self.topic))
        processed = {partition: offset for (topic, partition), offset
                     in self.stats.last_offsets.items() if topic == self.topic}
        for partition, (stored, done) in behind_processed(consumed, processed).items():
            log.warning("the MDM store has consumed %s[%d] up to offset %s, but this worker "
                        "had processed it up to %d: the store lost transactions it had "
                        "confirmed; reading them again", self.topic, partition,
                        "none" if stored is None else stored, done)
            if stored is None:
                del self.stats.last_offsets[(self.topic, partition)]
            else:
                self.stats.last_offsets[(self.topic, partition)] = stored
        for partition, offset in offsets.items():
            await consumer.seek(TopicPartition(self.topic, partition), offset)

    async def _publish(self, answers: list[OutboxEntry] | None) -> None:
        """Publish the answers of the batch just processed (and whatever a failure left in the
        outboxes before them)."""
        try:
            await self.publisher.publish(answers)
        except Exception as error:  # stays in the outbox; the next batch tries again
            self.stats.failed(f"publishing answers failed: {error}", self._clock.now())
            log.warning("publishing answers failed (kept for the next try): %s", error)

    async def _reached(self, ends: dict[int, int]) -> bool:
        consumer = self._require_started()
        for partition, end in ends.items():
            if await consumer.position(TopicPartition(self.topic, partition)) < end:
                return False
        return True

    def _note_ends(self, ends: dict[int, int]) -> None:
        for partition, end in ends.items():
            self.stats.end_offsets[(self.topic, partition)] = end

    def _require_started(self) -> Consumer:
        if self._consumer is None:
            raise RuntimeError("the MDM worker is not started")
        return self._consumer


async def run_mdm_loop(bus: Bus, store: ConsumerStorePort, settings: Settings, clock: Clock,
                       stop_event: asyncio.Event, *, stats: WorkerStats | None = None,
                       retry: ApplyRetry | None = None, timing: LoopTiming | None = None,
                       idle_exit: bool = False) -> WorkerStats:
    """Run the bus worker until ``stop_event`` is set (or, with ``idle_exit``, until the topic
    is drained); returns its stats."""
    worker = MdmBusWorker(bus, store, settings, clock, stats=stats, retry=retry, timing=timing)
    if idle_exit:
        try:
            await worker.drain(stop_event)
        finally:
            await worker.stop()
    else:
        await worker.run(stop_event)
    return worker.stats
