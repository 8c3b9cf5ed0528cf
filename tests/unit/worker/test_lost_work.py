"""A database that comes back from a crash without transactions it had confirmed (PostgreSQL
with ``synchronous_commit = off``, a failover to a standby that was behind): neither engine
reads on past the lost records. The bus loop reads them again (tests/unit/worker/
test_mdm_loop.py); the faust engine, which cannot be sought back from inside its agent, stops
with the error so that a restart resumes from the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync.worker.faust_app import _process
from sync.worker.mdm_processor import MdmProcessor, SourceRecord, StoreLostWorkError
from sync.worker.resume import behind_processed
from sync.worker.stats import WorkerStats
from tests.unit.mapping.builders import sa_message
from tests.unit.worker.support import CLOCK, FAST_RETRY, SETTINGS, CrashingStore, new_rig

TOPIC = SETTINGS.topics.sync_requests


def test_the_store_is_behind_only_where_it_consumed_less_than_was_processed() -> None:
    assert behind_processed({0: 10, 1: 5}, {0: 10, 1: 4}) == {}
    assert behind_processed({0: 7, 1: 5}, {0: 10, 1: 5, 2: 3}) == {0: (7, 10), 2: (None, 3)}
    assert behind_processed({}, {}) == {}


async def test_step_1_4_the_faust_engine_stops_instead_of_reading_past_lost_work(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sync.worker.faust_app.OUTAGE_WAIT_S", 0.001)
    path = tmp_path / "crashing.db"
    rig = await new_rig(f"sqlite:///{path}")
    records = [SourceRecord.from_bus(r) for r in await rig.send(
        *(sa_message(f"SA-{n}", sp_ids=(f"SP-{n}",)) for n in range(8)))]
    store = CrashingStore(rig.store, path, crash_after_batch=1, down_for_calls=2)
    stats = WorkerStats()
    processor = MdmProcessor(store, CLOCK, retry=FAST_RETRY, stats=stats)
    first, second = records[:4], records[4:]
    try:
        await _process(processor, first, stats, CLOCK)  # confirmed, then lost in the crash
        with pytest.raises(StoreLostWorkError, match=r"came back without transactions"):
            await _process(processor, second, stats, CLOCK)
        assert store.refused == 2  # the outage was waited out before the check
        # The second batch was not applied on top of the hole the crash left.
        assert rig.outbox_rows() == {"mdm_acknowledgements": 0, "mdm_dead_letters": 0}
    finally:
        rig.store.dispose()
