"""Publishes what the worker stored in its outboxes: acknowledgements to the ack topic, dead
letters to the dead-letter topic, each in consumption order, then marks them published.

A crash between the broker's acknowledgement and the marking publishes those records again on
the next run: acknowledgements and dead letters are delivered at least once, and a reader
recognises a repeat by its sync request id and version (an ack) or its source position (a
dead letter).

The answers of a batch that was just stored are published from memory (:meth:`publish`): the
outboxes stay the record that survives a crash, and are read back (:meth:`publish_pending`) on
start, after any failure, and whenever a batch's answers are not known in memory. A batch's
answers go straight out only while nothing stored earlier is known to wait in the outboxes,
so the order per key is the order of consumption either way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from sync.clock import Clock
from sync.config.settings import Settings
from sync.mdm.ports import ConsumerStorePort, OutboxEntry, OutboxKind
from sync.transport.bus import Message, Record
from sync.worker.stats import WorkerStats

PublishBatch = Callable[[str, Sequence[Message]], Awaitable[list[Record]]]

BATCH = 500


class OutboxPublisher:
    def __init__(self, store: ConsumerStorePort, publish_batch: PublishBatch,
                 settings: Settings, clock: Clock, stats: WorkerStats) -> None:
        self._store = store
        self._publish_batch = publish_batch
        self._topics = {OutboxKind.ACKNOWLEDGEMENT: settings.topics.acknowledgements,
                        OutboxKind.DEAD_LETTER: settings.topics.dead_letters}
        self._clock = clock
        self._stats = stats
        # The agent and the periodic flush may both ask; one publication at a time keeps the
        # order per key and never publishes one entry twice in one run.
        self._lock = asyncio.Lock()
        # Whether the outboxes may hold unpublished answers this publisher has not seen: true
        # until they were read to the end, and again after any failure. While true, answers
        # are published from the outboxes, in the order they were stored.
        self._outboxes_behind = True

    async def publish_pending(self) -> int:
        """Publish every unpublished entry; returns how many. Broker errors propagate (the
        entries stay unpublished and are tried again next time)."""
        async with self._lock:
            return await self._publish_stored()

    async def publish(self, answers: Sequence[OutboxEntry] | None) -> int:
        """Publish the answers a batch has just stored (committed), in consumption order, then
        mark them published; returns how many were published. With ``answers`` None (not
        known), or while earlier answers may wait in the outboxes, every unpublished entry is
        published from the outboxes instead (which holds these answers too). Errors
        propagate; what was not marked published is read back from the outboxes next time."""
        async with self._lock:
            if answers is None or self._outboxes_behind:
                return await self._publish_stored()
            if not answers:
                return 0
            self._outboxes_behind = True
            await self._send(answers)
            await asyncio.to_thread(self._store.mark_published, answers, self._clock.now())
            self._count(answers)
            self._outboxes_behind = False
            return len(answers)

    async def _publish_stored(self) -> int:
        self._outboxes_behind = True
        published = 0
        while True:
            entries = await asyncio.to_thread(self._store.unpublished, BATCH)
            if not entries:
                self._outboxes_behind = False
                return published
            await self._send(entries)
            await asyncio.to_thread(self._store.mark_published, entries, self._clock.now())
            self._count(entries)
            published += len(entries)

    async def _send(self, entries: Sequence[OutboxEntry]) -> None:
        for kind, topic in self._topics.items():
            # A dead letter of a record without a key still needs a record: Kafka takes a
            # value alone.
            chosen = [Message(entry.key, entry.value) for entry in entries if entry.kind is kind]
            if chosen:
                await self._publish_batch(topic, chosen)

    def _count(self, entries: Sequence[OutboxEntry]) -> None:
        acks = sum(1 for entry in entries if entry.kind is OutboxKind.ACKNOWLEDGEMENT)
        self._stats.acks_published += acks
        self._stats.dead_letters_published += len(entries) - acks
