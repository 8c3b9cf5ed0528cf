"""Publishes what the worker stored in its outboxes: acknowledgements to the ack topic, dead
letters to the dead-letter topic, each in consumption order, then marks them published.

A crash between the broker's acknowledgement and ``mark_published`` publishes those records
again on the next run: acknowledgements and dead letters are delivered at least once, and a
reader recognises a repeat by its sync request id and version (an ack) or its source position
(a dead letter).
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

    async def publish_pending(self) -> int:
        """Publish every unpublished entry; returns how many. Broker errors propagate (the
        entries stay unpublished and are tried again next time)."""
        published = 0
        async with self._lock:
            while True:
                entries = await asyncio.to_thread(self._store.unpublished, BATCH)
                if not entries:
                    return published
                for kind, topic in self._topics.items():
                    chosen = [entry for entry in entries if entry.kind is kind]
                    if chosen:
                        await self._publish_batch(topic, [_message(e) for e in chosen])
                await asyncio.to_thread(self._store.mark_published, entries, self._clock.now())
                self._count(entries)
                published += len(entries)

    def _count(self, entries: Sequence[OutboxEntry]) -> None:
        acks = sum(1 for entry in entries if entry.kind is OutboxKind.ACKNOWLEDGEMENT)
        self._stats.acks_published += acks
        self._stats.dead_letters_published += len(entries) - acks


def _message(entry: OutboxEntry) -> Message:
    # A dead letter of a record without a key still needs a record: Kafka takes a value alone.
    return Message(key=entry.key, value=entry.value)
