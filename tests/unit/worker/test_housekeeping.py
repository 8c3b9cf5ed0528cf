"""The MDM worker's daily housekeeping: the published acknowledgements older than the history
kept are removed at start and once more whenever the business date changes, not at every
poll."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from sync.clock import FixedClock
from sync.config.settings import Settings, TopicNames
from sync.mdm.ports import ConsumedPosition
from sync.storage.mdm import MdmStore
from sync.storage.mdm_schema import acknowledgements
from sync.transport.bus import bus_for
from sync.transport.topics import sync_topic_specs
from sync.worker.mdm_loop import LoopTiming, MdmBusWorker
from tests.contract.test_mdm_store import ack_for
from tests.unit.mdm.builders import default_admin, us_command
from tests.unit.waiting import until

PUBLISHED = dt.datetime(2025, 3, 3, 12, tzinfo=dt.UTC)


def _stored(store: MdmStore) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(acknowledgements))
                   .scalar_one())



async def test_the_worker_purges_published_acknowledgements_once_per_business_day(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = MdmStore(f"sqlite:///{tmp_path / 'mdm.db'}", default_admin())
    store.create_schema()
    suffix = uuid.uuid4().hex[:8]
    settings = Settings(mdm_db_url=f"sqlite:///{tmp_path / 'mdm.db'}",
                        broker_url=f"memory://housekeeping-{suffix}",
                        topics=TopicNames(sync_requests=f"hk-sync-{suffix}",
                                          acknowledgements=f"hk-acks-{suffix}",
                                          dead_letters=f"hk-dlq-{suffix}"))
    for offset in range(5):
        store.consume(ConsumedPosition("elsewhere", 0, offset), us_command(version=offset + 1),
                      ack_for(offset + 1))
    store.mark_published(store.unpublished(100), PUBLISHED)
    calls: list[dt.date] = []
    purge = MdmStore.purge_history

    def counted(self: MdmStore, business_date: dt.date) -> int:
        calls.append(business_date)
        return purge(self, business_date)

    monkeypatch.setattr(MdmStore, "purge_history", counted)
    bus = bus_for(settings.broker_url)
    await bus.start()
    await bus.create_topics(sync_topic_specs(settings))
    # 90 days kept: on 2025-06-01 what was published on 2025-03-03 stays.
    clock = FixedClock(dt.date(2025, 6, 1))
    worker = MdmBusWorker(bus, store, settings, clock, timing=LoopTiming(poll_ms=10))
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        await until(lambda: len(calls) == 1)
        await asyncio.sleep(0.3)  # many polls: no second purge on the same day
        assert calls == [dt.date(2025, 6, 1)]
        assert _stored(store) == 5
        clock.set(dt.date(2025, 6, 2))
        await until(lambda: _stored(store) == 0)
    finally:
        stop.set()
        await asyncio.wait_for(running, 30)
        await bus.stop()
        store.dispose()
    assert calls == [dt.date(2025, 6, 1), dt.date(2025, 6, 2)]
    assert worker.housekeeping.removed == 5
