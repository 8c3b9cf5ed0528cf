"""The relay (batch ``SYNC-RELAY``): publishes pending sync requests, in queue order, keyed by
entity type and id, and marks them ``SENT`` only once the broker has acknowledged the write.

Ordering per entity holds because an entity has at most one pending request and the bus keeps
the order of one key's records. A crash between publishing and marking leaves the request
pending: it is published again, and MDM answers the second copy as a duplicate (same version),
so delivery is at least once and applying is exactly once. Broker errors are retried with
exponential backoff (tenacity) inside the bus adapter and again here, batch by batch, without
ever marking an unacknowledged request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from sync.ccb.sync_requests import QueuedRequest
from sync.clock import Clock
from sync.storage.common import first_line, is_unavailable
from sync.storage.outbox import SqlOutbox
from sync.transport.bus import Bus, BusError, Message, Record, RecordTooLargeError

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500
# How long an idle relay waits before looking at the outbox again: the floor of a change's
# latency to the broker. One indexed query per look (the pending state's index) is cheap.
OUTAGE_WAIT_S = 0.5
IDLE_WAIT_S = 0.02


@dataclass
class RelayReport:
    published: int = 0
    marked_sent: int = 0
    batches: int = 0
    # Refused by the broker as larger than the topic takes: ERROR with a To Do each.
    set_aside: int = 0

    @property
    def moved(self) -> bool:
        """Whether the batch moved any request on (published or set aside)."""
        return bool(self.published or self.set_aside)

    def __add__(self, other: RelayReport) -> RelayReport:
        return RelayReport(self.published + other.published,
                           self.marked_sent + other.marked_sent, self.batches + other.batches,
                           self.set_aside + other.set_aside)


class Relay:
    def __init__(self, outbox: SqlOutbox, bus: Bus, topic: str, clock: Clock, *,
                 batch_size: int = DEFAULT_BATCH_SIZE, attempts: int = 5,
                 max_wait_s: float = 10.0) -> None:
        self.outbox = outbox
        self.bus = bus
        self.topic = topic
        self.clock = clock
        self.batch_size = batch_size
        self.attempts = attempts
        self.max_wait_s = max_wait_s
        # A batch the broker acknowledged whose marking the database refused (it went away).
        self._unmarked: list[tuple[QueuedRequest, int, int]] = []

    async def relay_batch(self) -> RelayReport:
        """Publish one batch of pending requests; an empty report when none are pending.

        A batch published but not marked because the database went away is marked first,
        before any new batch is read: a change undone meanwhile (its request discarded) is on
        the topic all the same, and only ``mark_sent`` queues the snapshot that takes it back
        in MDM."""
        if self._unmarked:
            marked = await asyncio.to_thread(self.outbox.mark_sent, self._unmarked,
                                             self.clock.now())
            self._unmarked = []
            return RelayReport(marked_sent=marked)
        batch = await asyncio.to_thread(self.outbox.next_batch, self.batch_size)
        if not batch:
            return RelayReport()
        messages = [Message(key=request.key.encode("utf-8"), value=request.payload,
                            headers=(("sync-request-id", request.id.encode("utf-8")),))
                    for request in batch]
        refused: list[tuple[QueuedRequest, str]] = []
        try:
            records = await self._publish(messages)
        except RecordTooLargeError:
            sent, refused = await self._publish_one_by_one(batch, messages)
        else:
            sent = [(request, record.partition, record.offset)
                    for request, record in zip(batch, records, strict=True)]
        self._unmarked = sent
        marked = await asyncio.to_thread(self.outbox.mark_sent, sent, self.clock.now())
        self._unmarked = []
        set_aside = 0
        if refused:
            set_aside = await asyncio.to_thread(self.outbox.set_aside, refused,
                                                self.clock.now())
            for request, reason in refused:
                log.error("relay: sync request %s for %s set aside as ERROR with a To Do: %s",
                          request.id, request.key, reason)
        return RelayReport(published=len(sent), marked_sent=marked, batches=1,
                           set_aside=set_aside)

    async def _publish(self, messages: list[Message]) -> list[Record]:
        """Write ``messages``, retrying what may pass; a record the topic cannot take is
        not retried (:class:`RecordTooLargeError`)."""
        records: list[Record] | None = None
        async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.attempts),
                wait=wait_exponential(multiplier=0.5, max=self.max_wait_s),
                retry=retry_if_exception(_may_pass), reraise=True):
            with attempt:
                records = await self.bus.publish_batch(self.topic, messages)
        assert records is not None
        return records

    async def _publish_one_by_one(self, batch: list[QueuedRequest], messages: list[Message]
                                  ) -> tuple[list[tuple[QueuedRequest, int, int]],
                                             list[tuple[QueuedRequest, str]]]:
        """After the broker refused a batch for a record larger than the topic takes: each
        request alone, in queue order, so that the ones it takes go out and the ones it
        cannot take are set aside instead of holding up every request behind them (one
        entity has one pending request, so no entity's order changes). A failure of another
        kind stops here; what went out is marked first on the next round."""
        sent: list[tuple[QueuedRequest, int, int]] = []
        refused: list[tuple[QueuedRequest, str]] = []
        for request, message in zip(batch, messages, strict=True):
            try:
                [record] = await self._publish([message])
            except RecordTooLargeError as error:
                refused.append((request, str(error)))
                continue
            except BaseException:
                self._unmarked = sent
                raise
            sent.append((request, record.partition, record.offset))
        return sent, refused

    async def drain(self, max_batches: int = 1_000_000) -> RelayReport:
        """Publish until nothing is pending (bounded by ``max_batches``)."""
        total = RelayReport()
        for _ in range(max_batches):
            report = await self.relay_batch()
            if not report.moved:
                break
            total = total + report
        return total

    async def run(self, stop: asyncio.Event, idle_wait_s: float = IDLE_WAIT_S) -> RelayReport:
        """Relay until ``stop`` is set; a failed batch is logged and tried again later: a broker
        error after ``max_wait_s``, a CCB database out of reach with growing waits (0.5 s to
        ``max_wait_s``), so that a database restart is waited out, not crashed on."""
        total = RelayReport()
        outage_wait_s = OUTAGE_WAIT_S
        while not stop.is_set():
            try:
                report = await self.relay_batch()
            except BusError as error:
                log.error("relay: publishing to %s failed, will retry: %s", self.topic, error)
                report = RelayReport()
                await _wait(stop, self.max_wait_s)
            except Exception as error:
                if not is_unavailable(error):
                    raise
                # Published but not marked sent: published again later, which MDM answers
                # as a duplicate.
                log.warning("relay: the CCB database is unavailable, will retry in %.1f s: %s",
                            outage_wait_s, first_line(error))
                await _wait(stop, outage_wait_s)
                outage_wait_s = min(outage_wait_s * 2, self.max_wait_s)
                continue
            outage_wait_s = OUTAGE_WAIT_S
            total = total + report
            if not report.moved:
                await _wait(stop, idle_wait_s)
        return total


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def _may_pass(error: BaseException) -> bool:
    """Bus errors worth another attempt: all but a record the topic cannot take."""
    return isinstance(error, BusError) and not isinstance(error, RecordTooLargeError)
