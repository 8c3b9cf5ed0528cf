"""The CCB worker's housekeeping: ``SYNC-PURGE`` at start and once more whenever the business
date changes, not at every timeout check."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest

from sync.ccb.loading import load_master_data, parse_text
from sync.clock import FixedClock
from sync.config.admin import load_admin_config
from sync.config.settings import Settings, TopicNames
from sync.mapping.messages import Acknowledgement, AckOutcome, EntityType
from sync.pipeline.ccb_worker import run_ccb_worker
from sync.pipeline.stores import open_outbox
from sync.storage.outbox import PurgeReport, SqlOutbox
from tests.unit.waiting import until

ADMIN = load_admin_config()
EXAMPLE = Path(__file__).parents[3] / "examples" / "premise-landlord.yaml"
SETTLED_ON = dt.date(2025, 3, 3)


def _synchronized_history(url: str) -> int:
    """The sample building loaded, every request sent and synchronized on ``SETTLED_ON``."""
    clock = FixedClock(SETTLED_ON)
    outbox = open_outbox(url, ADMIN, clock)
    try:
        outbox.store.execute(load_master_data(parse_text(EXAMPLE.read_text("utf-8"), "example"),
                                              "example", ADMIN, clock.now(), "loader"))
        sent = outbox.next_batch(1000)
        outbox.mark_sent([(r, 0, n) for n, r in enumerate(sent)], clock.now())
        outbox.acknowledge([Acknowledgement(
            sync_request_id=r.id, entity_type=EntityType(r.entity_type), entity_id=r.entity_id,
            version=r.version, outcome=AckOutcome.SYNCHRONIZED, mdm_us_id=r.entity_id,
            processed_at=clock.now()) for r in sent], clock.now())
        return len(sent)
    finally:
        outbox.store.dispose()


def _remaining(url: str) -> int:
    outbox = open_outbox(url, ADMIN, FixedClock(SETTLED_ON))
    try:
        return len(outbox.find())
    finally:
        outbox.store.dispose()



async def test_the_worker_purges_the_history_once_per_business_day(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'ccb.db'}"
    settled = _synchronized_history(url)
    assert settled > 0
    purges: list[dt.datetime] = []
    purge = SqlOutbox.purge_settled

    def counted(outbox: SqlOutbox, before: dt.datetime, **options: Any) -> PurgeReport:
        purges.append(before)
        return purge(outbox, before, **options)

    monkeypatch.setattr(SqlOutbox, "purge_settled", counted)
    suffix = uuid.uuid4().hex[:8]
    settings = Settings(ccb_db_url=url, broker_url=f"memory://housekeeping-{suffix}",
                        topics=TopicNames(sync_requests=f"hk-sync-{suffix}",
                                          acknowledgements=f"hk-acks-{suffix}",
                                          dead_letters=f"hk-dlq-{suffix}"))
    # 90 days of history kept: on 2025-06-01 what settled on 2025-03-03 stays.
    clock = FixedClock(dt.date(2025, 6, 1))
    stop = asyncio.Event()
    worker = asyncio.create_task(run_ccb_worker(settings, ADMIN, clock, stop,
                                                timeout_check_interval_s=0.01))
    try:
        await until(lambda: len(purges) == 1)
        await asyncio.sleep(0.3)  # thirty timeout checks: no second purge on the same day
        assert purges == [dt.datetime(2025, 3, 3, tzinfo=dt.UTC)]
        assert _remaining(url) == settled
        clock.set(dt.date(2025, 6, 2))
        await until(lambda: len(purges) == 2)
        await until(lambda: _remaining(url) == 0)
    finally:
        stop.set()
        report = await asyncio.wait_for(worker, 30)
    assert purges[1] == dt.datetime(2025, 3, 4, tzinfo=dt.UTC)
    assert report.purged == settled
