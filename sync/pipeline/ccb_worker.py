"""The CCB sync worker: the relay, the acknowledgement consumer and ``SYNC-TIMEOUT``, together,
and ``SYNC-PURGE`` once a business day.

It runs beside the CCB service (CLI, API): they write sync requests into the outbox, this
process publishes them and records MDM's answers. Run one per CCB database; a second one would
only publish some requests twice, which MDM answers as duplicates.

The purge of the settled requests' history (``SqlOutbox.purge_settled``) runs at start and
again whenever the business date has changed, between two timeout checks: an installation
that runs the worker needs no schedule for it (``c2m-sync batch run SYNC-PURGE`` does the
same, for one that does not, or wants it at a set hour).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from sync.clock import Clock
from sync.config.admin import AdminConfig
from sync.config.settings import Settings
from sync.pipeline.acks import AckConsumer, AckConsumerReport
from sync.pipeline.relay import Relay, RelayReport
from sync.pipeline.stores import open_outbox
from sync.storage.common import first_line, is_unavailable
from sync.transport.bus import Bus, bus_of
from sync.transport.topics import sync_topic_specs
from sync.worker.housekeeping import DailyPurge

log = logging.getLogger("sync.pipeline")

TIMEOUT_CHECK_INTERVAL_S = 60.0


@dataclass
class CcbWorkerReport:
    relay: RelayReport = field(default_factory=RelayReport)
    acknowledgements: AckConsumerReport = field(default_factory=AckConsumerReport)
    timed_out: int = 0
    purged: int = 0  # settled sync requests removed (SYNC-PURGE)


async def ensure_topics(bus: Bus, settings: Settings) -> None:
    """Create the sync topics when missing (an existing topic is left as it is)."""
    for outcome in await bus.create_topics(sync_topic_specs(settings)):
        if outcome.problems:
            log.warning("topic %s differs from its spec: %s", outcome.spec.name,
                        "; ".join(outcome.problems))


async def run_ccb_worker(settings: Settings, admin: AdminConfig, clock: Clock,
                         stop: asyncio.Event, *, bus: Bus | None = None,
                         timeout_check_interval_s: float = TIMEOUT_CHECK_INTERVAL_S
                         ) -> CcbWorkerReport:
    """Relay, consume acknowledgements and time out stale requests until ``stop`` is set."""
    outbox = await asyncio.to_thread(open_outbox, settings.ccb_db_url, admin, clock)
    own_bus = bus is None
    bus = bus if bus is not None else bus_of(settings)
    report = CcbWorkerReport()
    acks = AckConsumer(outbox, bus, settings.topics, clock)
    try:
        if own_bus:
            await bus.start()
        await ensure_topics(bus, settings)
        relay = Relay(outbox, bus, settings.topics.sync_requests, clock)

        housekeeping = DailyPurge(lambda today: outbox.purge_settled(
            admin.installation.history_cutoff(today)).removed, clock, "settled sync requests")

        async def housekeeping_periodically() -> None:
            while not stop.is_set():
                try:
                    timed_out = await asyncio.to_thread(outbox.time_out, clock.now())
                except Exception as error:
                    if not is_unavailable(error):
                        raise
                    # The next check does it; requests only wait a little longer.
                    log.warning("SYNC-TIMEOUT: the CCB database is unavailable: %s",
                                first_line(error))
                    timed_out = []
                report.timed_out += len(timed_out)
                for request in timed_out:
                    log.warning("sync request %s (%s) not acknowledged in time", request.id,
                                request.key)
                await housekeeping.run_if_due()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout_check_interval_s)

        log.info("CCB sync worker started (broker %s)", bus.url)
        relayed, acknowledged, _ = await asyncio.gather(
            relay.run(stop), acks.run(stop), housekeeping_periodically())
        report.relay = relayed
        report.acknowledgements = acknowledged
        report.purged = housekeeping.removed
        return report
    finally:
        await acks.close()
        if own_bus:
            await bus.stop()
        outbox.store.dispose()
