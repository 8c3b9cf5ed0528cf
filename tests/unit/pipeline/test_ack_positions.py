"""The acknowledgement consumer's positions kept in the CCB database: a database that loses a
batch of answers it had confirmed (after the consumer group's offsets moved past it) has that
batch read and applied again, instead of leaving its requests SENT until SYNC-TIMEOUT."""

from __future__ import annotations

import asyncio
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
from sync.transport.bus import BrokerUnavailableError
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


async def test_step_1_4_answers_lost_in_a_crash_nobody_saw_are_found_by_the_next_batch(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The database loses a batch and refuses no call, and newer answers keep coming: the
    next batch of the same partition finds the hole before its positions would move past it."""
    pipeline = await loaded_pipeline(pipeline_settings("memory://", tmp_path, "hole"))
    try:
        await pipeline.relay.drain()
        await pipeline.mdm_worker.drain()
        sent = pipeline.outbox.counts()["SENT"]
        topic = pipeline.settings.topics.acknowledgements
        ends = await pipeline.bus.end_offsets(topic)
        # The lost batch (call 2; call 1 is the comparison at assignment) is the first three
        # answers in partition order; the partition it ends in has more to read after it.
        taken = 0
        for partition in sorted(ends):
            taken += ends[partition]
            if taken >= 3:
                break
        assert taken > 3
        crashing = CrashingOutbox(pipeline.outbox, tmp_path / "ccb.db", crash_after_batch=2,
                                  down_for_calls=0)
        acks = AckConsumer(crashing, pipeline.bus,  # type: ignore[arg-type]
                           pipeline.settings.topics, pipeline.clock, max_records=3,
                           idle_check_s=3600)  # no comparison while idle: the batches find it
        caplog.set_level(logging.WARNING)
        for _ in range(50):  # bounded: the topic holds a few dozen answers
            if not (await acks.consume_batch(timeout_ms=0)).read:
                break
        await acks.close()

        assert len(crashing.lost) == 3
        counts = pipeline.outbox.counts()
        assert (counts["SENT"], counts["SYNCHRONIZED"]) == (0, sent)
        assert "the CCB database lost transactions it had confirmed" in caplog.text
        assert pipeline.outbox.ack_positions(topic) == {
            partition: end - 1 for partition, end in ends.items()}
    finally:
        await pipeline.stop()


async def _lost_while_idle(tmp_path: Path, name: str, idle_check_s: float, run_for_s: float,
                           until_settled: bool) -> tuple[int, dict[str, int], list[str]]:
    """A CCB database that loses a batch of answers in a crash nobody sees (it refuses no call: it
    came back while the consumer was idle); the consumer runs on for ``run_for_s`` with
    nothing new to read (``until_settled``: or until nothing is SENT any more). Returns the
    requests sent, the states at the end, and the lost answers."""
    pipeline = await loaded_pipeline(pipeline_settings("memory://", tmp_path, name))
    try:
        await pipeline.relay.drain()
        await pipeline.mdm_worker.drain()
        sent = pipeline.outbox.counts()["SENT"]
        # Call 1 compares the positions at assignment; call 2 applies every answer in one
        # batch and is lost: the last batch, after which there is nothing more to read.
        crashing = CrashingOutbox(pipeline.outbox, tmp_path / "ccb.db", crash_after_batch=2,
                                  down_for_calls=0)
        acks = AckConsumer(crashing, pipeline.bus,  # type: ignore[arg-type]
                           pipeline.settings.topics, pipeline.clock,
                           idle_check_s=idle_check_s)
        stop = asyncio.Event()
        running = asyncio.create_task(acks.run(stop))
        for _ in range(int(run_for_s / 0.1)):  # bounded; done early once nothing is SENT
            await asyncio.sleep(0.1)
            if until_settled and crashing.lost and not pipeline.outbox.counts()["SENT"]:
                break
        stop.set()
        await asyncio.wait_for(running, 10)
        await acks.close()
        return sent, pipeline.outbox.counts(), crashing.lost
    finally:
        await pipeline.stop()


async def test_step_1_4_an_idle_consumer_finds_answers_lost_in_a_crash_nobody_saw(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    sent, counts, lost = await _lost_while_idle(tmp_path, "idle-check", idle_check_s=0.2,
                                                run_for_s=15.0, until_settled=True)
    assert len(lost) == sent
    assert (counts["SENT"], counts["SYNCHRONIZED"]) == (0, sent)
    assert "the CCB database lost transactions it had confirmed" in caplog.text


async def test_step_1_4_without_the_idle_comparison_the_lost_answers_wait_for_the_timeout(
        tmp_path: Path) -> None:
    """What the idle comparison is for: nothing else notices a crash that refused no call."""
    sent, counts, lost = await _lost_while_idle(tmp_path, "no-idle-check", idle_check_s=3600,
                                                run_for_s=1.0, until_settled=False)
    assert len(lost) == sent
    assert (counts["SENT"], counts["SYNCHRONIZED"]) == (sent, 0)


class BrokerDown:
    """The bus and its consumers with the broker out of reach for the first ``calls`` calls
    that ask it something (offsets, commits): what a broker restart looks like to the port."""

    def __init__(self, bus: Any, calls: int) -> None:
        self._bus = bus
        self.left = calls
        self.refused = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bus, name)

    def ask(self) -> None:
        if self.left > 0:
            self.left -= 1
            self.refused += 1
            raise BrokerUnavailableError("reading offsets failed: KafkaConnectionError")

    async def beginning_offsets(self, topic: str) -> dict[int, int]:
        self.ask()
        offsets: dict[int, int] = await self._bus.beginning_offsets(topic)
        return offsets

    async def consumer(self, topics: Sequence[str], group_id: str | None = None) -> Any:
        return _ConsumerOf(self, await self._bus.consumer(topics, group_id))


class _ConsumerOf:
    def __init__(self, down: BrokerDown, consumer: Any) -> None:
        self._down = down
        self._consumer = consumer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._consumer, name)

    async def commit(self, offsets: Any = None) -> None:
        self._down.ask()
        await self._consumer.commit(offsets)


async def test_step_1_4_the_consumer_waits_out_a_broker_outage_instead_of_stopping(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The comparison at assignment (and the one every 30 s while idle) and the group commit
    ask the broker: one that is down or restarting is waited out and the answers applied."""
    pipeline = await loaded_pipeline(pipeline_settings("memory://", tmp_path, "broker-down"))
    try:
        await pipeline.relay.drain()
        await pipeline.mdm_worker.drain()
        sent = pipeline.outbox.counts()["SENT"]
        down = BrokerDown(pipeline.bus, calls=3)
        acks = AckConsumer(pipeline.outbox, down,  # type: ignore[arg-type]
                           pipeline.settings.topics, pipeline.clock, idle_check_s=0.2)
        caplog.set_level(logging.WARNING)
        stop = asyncio.Event()
        running = asyncio.create_task(acks.run(stop))
        for _ in range(100):  # bounded: three refusals, waits of 0.5, 1 and 2 s
            await asyncio.sleep(0.1)
            if running.done() or (not down.left and not pipeline.outbox.counts()["SENT"]):
                break
        stop.set()
        await asyncio.wait_for(running, 10)  # raises what stopped it, if anything did
        await acks.close()

        assert down.refused == 3
        counts = pipeline.outbox.counts()
        assert (counts["SENT"], counts["SYNCHRONIZED"]) == (0, sent)
        assert "acknowledgements: the broker is unavailable" in caplog.text
    finally:
        await pipeline.stop()
