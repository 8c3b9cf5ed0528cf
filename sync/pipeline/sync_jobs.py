"""The sync batches ``SYNC-RELAY`` and ``SYNC-TIMEOUT`` (SPEC.md section 4), for schedulers and
one-off runs; ``c2m-sync worker ccb`` does the same work continuously. ``SYNC-PURGE`` keeps the
outbox's history to ``installation.sync_history_days``; schedule it (daily, say)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sync.batches.registry import BatchUsageError, JobContext, jobs
from sync.batches.report import BatchReport
from sync.ccb.sync_requests import SyncRequestState
from sync.config.settings import Settings
from sync.pipeline.ccb_worker import ensure_topics
from sync.pipeline.relay import Relay
from sync.pipeline.stores import open_outbox
from sync.storage.outbox import SqlOutbox
from sync.transport.bus import bus_of


def _outbox(context: JobContext) -> tuple[SqlOutbox, Settings]:
    if context.settings is None:
        raise BatchUsageError("the sync batches need the settings (database and broker URLs)")
    return open_outbox(context.settings.ccb_db_url, context.admin, context.clock), \
        context.settings


@dataclass(frozen=True)
class RelayJob:
    code: str = "SYNC-RELAY"
    description: str = "publish pending sync requests to the sync-request topic"

    def run(self, context: JobContext) -> BatchReport:
        if context.settings is not None and context.settings.broker_url.startswith("memory://"):
            # A one-off run would publish into a bus that ends with this process, and the
            # requests would wait for an answer that never comes.
            raise BatchUsageError(
                "SYNC-RELAY needs a broker that outlives this command: use --broker "
                "kafka://HOST:PORT, or 'c2m-sync worker all' for the in-process bus")
        outbox, settings = _outbox(context)
        report = BatchReport(self.code, context.date())
        try:
            pending = outbox.counts()[SyncRequestState.PENDING.value]
            context.progress.start(self.code, None)  # the relay reports no steps
            relayed = asyncio.run(_relay(outbox, settings, context))
        finally:
            outbox.store.dispose()
        report.examined = pending
        report.changed = relayed
        return report


async def _relay(outbox: SqlOutbox, settings: Settings, context: JobContext) -> int:
    bus = bus_of(settings)
    await bus.start()
    try:
        await ensure_topics(bus, settings)
        relay = Relay(outbox, bus, settings.topics.sync_requests, context.clock)
        return (await relay.drain()).marked_sent
    finally:
        await bus.stop()


@dataclass(frozen=True)
class TimeoutJob:
    code: str = "SYNC-TIMEOUT"
    description: str = "sync requests awaiting acknowledgement too long: error plus To Do"

    def run(self, context: JobContext) -> BatchReport:
        outbox, _settings = _outbox(context)
        report = BatchReport(self.code, context.date())
        try:
            report.examined = outbox.counts()[SyncRequestState.SENT.value]
            context.progress.start(self.code, None)
            timed_out = outbox.time_out(context.clock.now())
        finally:
            outbox.store.dispose()
        report.changed = len(timed_out)
        report.todos_raised = len(timed_out)
        report.details = [f"sync request {r.id} ({r.key}): {r.errors[0]}" for r in timed_out]
        return report


@dataclass(frozen=True)
class PurgeJob:
    code: str = "SYNC-PURGE"
    description: str = ("remove sync requests settled more than installation.sync_history_days "
                        "ago (SYNCHRONIZED, DISCARDED)")

    def run(self, context: JobContext) -> BatchReport:
        outbox, _settings = _outbox(context)
        report = BatchReport(self.code, context.date())
        before = context.admin.installation.history_cutoff(context.date())
        context.progress.start(f"sync requests settled before {before:%Y-%m-%d}", None)
        try:
            purged = outbox.purge_settled(before, progress=context.progress.advance,
                                          stop=context.should_stop)
        finally:
            outbox.store.dispose()
        report.examined = purged.examined
        report.changed = purged.removed
        report.stopped = purged.stopped
        if purged.removed:
            report.details = [f"{purged.removed} sync requests settled before "
                              f"{before:%Y-%m-%d} removed"]
        return report


SYNC_RELAY = jobs.register(RelayJob())
SYNC_TIMEOUT = jobs.register(TimeoutJob())
SYNC_PURGE = jobs.register(PurgeJob())
