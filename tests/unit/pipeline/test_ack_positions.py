"""The acknowledgement consumer's positions kept in the CCB database: a database that loses a
batch of answers it had confirmed (after the consumer group's offsets moved past it) has that
batch read and applied again, instead of leaving its requests SENT until SYNC-TIMEOUT."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from sync.mapping.messages import Acknowledgement
from sync.pipeline.acks import AckConsumer
from sync.storage.outbox import AckReport, SqlOutbox
from tests.integration.pipeline_support import loaded_pipeline, pipeline_settings
from tests.unit.crashing import CrashingDatabase


class CrashingOutbox:
    """The outbox on a CCB database that loses its last confirmed batch of answers in a crash
    (:class:`tests.unit.crashing.CrashingDatabase`). Everything else is the real SQLite
    outbox."""

    def __init__(self, outbox: SqlOutbox, path: Path, *, crash_after_batch: int,
                 down_for_calls: int) -> None:
        self._outbox = outbox
        self.database = CrashingDatabase(path, outbox.store.dispose,
                                         crash_after_batch=crash_after_batch,
                                         down_for_calls=down_for_calls)
        self.lost: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._outbox, name)

    @property
    def refused(self) -> int:
        return self.database.refused

    def acknowledge(self, acks: Sequence[Acknowledgement], now: dt.datetime,
                    *positions: Any) -> AckReport:
        crashed_before = self.database.crashed
        report = self.database.batch(lambda: self._outbox.acknowledge(acks, now, *positions))
        if self.database.crashed and not crashed_before:
            self.lost = [ack.sync_request_id for ack in acks]
        return report


async def test_step_1_4_answers_the_ccb_database_lost_in_a_crash_are_applied_again(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pipeline = await loaded_pipeline(pipeline_settings("memory://", tmp_path, "lost-acks"))
    try:
        await pipeline.relay.drain()
        await pipeline.mdm_worker.drain()  # every answer is on the acknowledgement topic
        sent = pipeline.outbox.counts()["SENT"]
        assert sent >= 9
        crashing = CrashingOutbox(pipeline.outbox, tmp_path / "ccb.db", crash_after_batch=2,
                                  down_for_calls=2)
        acks = AckConsumer(crashing, pipeline.bus,  # type: ignore[arg-type]
                           pipeline.settings.topics, pipeline.clock, max_records=3)
        caplog.set_level(logging.WARNING)
        for _ in range(50):  # bounded: the outage is two refused calls
            try:
                report = await acks.consume_batch(timeout_ms=0)
            except OperationalError:  # the database is restarting: read the batch again
                continue
            if not report.read:
                break
        await acks.close()

        assert crashing.refused == 2  # the outage was waited out
        assert len(crashing.lost) == 3
        counts = pipeline.outbox.counts()
        assert (counts["SENT"], counts["SYNCHRONIZED"]) == (0, sent)  # the lost three too
        assert "the CCB database lost transactions it had confirmed" in caplog.text
        assert "reading them again" in caplog.text
        # The group's commit moved on regardless; the database's positions are the truth.
        stored = pipeline.outbox.ack_positions(pipeline.settings.topics.acknowledgements)
        ends = await pipeline.bus.end_offsets(pipeline.settings.topics.acknowledgements)
        assert stored == {partition: end - 1 for partition, end in ends.items()}
    finally:
        await pipeline.stop()
