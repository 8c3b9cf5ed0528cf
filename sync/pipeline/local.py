"""Both sides of the pipeline in one process over one bus, stepped until they agree.

Used by the demo, ``worker all`` on the in-process bus, and tests: CCB's relay publishes, the
MDM worker (the bus loop) applies and acknowledges, CCB's acknowledgement consumer records the
answers, and :meth:`LocalPipeline.settle` repeats that until nothing moves. Each step is the
production component, not a stand-in.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

from sync.ccb.sync_requests import SyncRequestState
from sync.clock import Clock
from sync.config.admin import AdminConfig
from sync.config.settings import Settings
from sync.pipeline.acks import AckConsumer
from sync.pipeline.ccb_worker import ensure_topics
from sync.pipeline.relay import Relay
from sync.pipeline.stores import open_mdm_store, open_outbox
from sync.storage.mdm import MdmStore
from sync.storage.outbox import SqlOutbox
from sync.transport.bus import Bus, bus_of
from sync.worker.mdm_loop import MdmBusWorker


@dataclass
class SettleReport:
    rounds: int = 0
    published: int = 0
    mdm_verdicts: Counter[str] = field(default_factory=Counter)
    ack_verdicts: Counter[str] = field(default_factory=Counter)
    todos_raised: int = 0


class LocalPipeline:
    def __init__(self, settings: Settings, admin: AdminConfig, clock: Clock,
                 bus: Bus | None = None) -> None:
        self.settings = settings
        self.admin = admin
        self.clock = clock
        self.bus = bus if bus is not None else bus_of(settings)
        self.outbox: SqlOutbox = open_outbox(settings.ccb_db_url, admin, clock)
        self.mdm: MdmStore = open_mdm_store(settings.mdm_db_url, admin)
        self.relay = Relay(self.outbox, self.bus, settings.topics.sync_requests, clock)
        self.mdm_worker = MdmBusWorker(self.bus, self.mdm, settings, clock)
        self.acks = AckConsumer(self.outbox, self.bus, settings.topics, clock)

    async def start(self) -> None:
        await self.bus.start()
        await ensure_topics(self.bus, self.settings)
        await self.mdm_worker.start()

    async def settle(self, max_rounds: int = 50, ack_wait_ms: int = 200) -> SettleReport:
        """Relay, apply and acknowledge until every request is answered and a round moves
        nothing (at most ``max_rounds``; a retry of an order-sensitive rejection needs a round).
        Every answer MDM wrote in a round is read in that round: on a real broker an answer can
        take a moment to become readable, so the acknowledgements are read, ``ack_wait_ms`` at
        a time, up to the topic's end as it was once MDM had answered (answers to messages
        delivered twice included, which settle no request)."""
        report = SettleReport()
        for _ in range(max_rounds):
            relayed = await self.relay.drain()
            verdicts = await self.mdm_worker.drain()
            answered = await self.acks.drain_to(
                await self.bus.end_offsets(self.settings.topics.acknowledgements), ack_wait_ms)
            awaiting = await asyncio.to_thread(self._awaiting_answers)
            report.rounds += 1
            report.published += relayed.published
            report.mdm_verdicts.update({verdict.value: count
                                        for verdict, count in verdicts.items() if count})
            report.ack_verdicts.update(answered.verdicts)
            report.todos_raised += answered.todos_raised
            if not relayed.published and not answered.read and not awaiting:
                break
        return report

    def _awaiting_answers(self) -> int:
        counts = self.outbox.counts()
        return counts[SyncRequestState.PENDING.value] + counts[SyncRequestState.SENT.value]

    async def stop(self) -> None:
        await self.acks.close()
        await self.mdm_worker.stop()
        await self.bus.stop()
        self.outbox.store.dispose()
        self.mdm.dispose()
