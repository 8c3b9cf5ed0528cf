"""The CCB worker's parts meet a CCB database out of reach: the acknowledgement consumer reads
its batch again and the relay tries again, instead of skipping answers or stopping the
worker. (The whole worker under a real PostgreSQL restart: tests/faults/
test_ccb_postgres_restart.py.)"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from sync.ccb.commands import CancelPendingStop, RequestStop
from sync.ccb.sync_requests import SyncRequestState
from sync.pipeline.acks import AckConsumer
from sync.pipeline.local import LocalPipeline
from sync.pipeline.relay import Relay
from sync.storage.common import is_unavailable
from sync.storage.outbox import SqlOutbox
from tests.faults.support import assert_ccb_and_mdm_agree
from tests.integration.pipeline_support import loaded_pipeline, pipeline_settings, run

DOWN = OperationalError("COMMIT", None, ConnectionRefusedError("the database is restarting"))


class OutboxDown:
    """The real outbox, except that the named methods fail ``times`` times first, as they do
    while the database restarts."""

    def __init__(self, outbox: SqlOutbox, failing: Sequence[str], times: int = 1) -> None:
        self._outbox = outbox
        self._left = dict.fromkeys(failing, times)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._outbox, name)
        if self._left.get(name, 0) <= 0:
            return method

        def refused(*_: Any, **__: Any) -> Any:
            self._left[name] -= 1
            raise DOWN
        return refused


async def read_all(pipeline: Any, topic: str) -> list[Any]:
    consumer = await pipeline.bus.consumer([topic])
    records = await consumer.getmany(max_records=100_000)
    await consumer.stop()
    return list(records)


def test_an_out_of_reach_database_is_told_from_a_statement_at_fault() -> None:
    assert is_unavailable(DOWN)
    assert not is_unavailable(IntegrityError("INSERT", None, ValueError("duplicate key")))
    assert not is_unavailable(ValueError("a bug"))


async def test_step_1_4_acknowledgements_met_by_an_outage_are_read_again_not_skipped(
        tmp_path: Path) -> None:
    pipeline = await loaded_pipeline(pipeline_settings("memory://", tmp_path, "acks-outage"))
    try:
        await pipeline.relay.drain()
        await pipeline.mdm_worker.drain()  # every answer is on the acknowledgement topic
        sent = pipeline.outbox.counts()["SENT"]
        assert sent > 0
        acks = AckConsumer(OutboxDown(pipeline.outbox, ["acknowledge"]),  # type: ignore[arg-type]
                           pipeline.bus, pipeline.settings.topics, pipeline.clock)
        with pytest.raises(OperationalError):
            await acks.consume_batch(timeout_ms=0)
        assert pipeline.outbox.counts()["SENT"] == sent  # nothing applied
        report = await acks.drain()  # the same batch again, from its first record
        await acks.close()
        assert report.read == sent
        counts = pipeline.outbox.counts()
        assert counts["SENT"] == 0
        assert counts["SYNCHRONIZED"] == sent
    finally:
        await pipeline.stop()


async def test_step_1_4_the_ack_consumer_waits_an_outage_out(tmp_path: Path) -> None:
    pipeline = await loaded_pipeline(pipeline_settings("memory://", tmp_path, "acks-run"))
    try:
        await pipeline.relay.drain()
        await pipeline.mdm_worker.drain()
        acks = AckConsumer(OutboxDown(pipeline.outbox, ["acknowledge"], times=2),  # type: ignore[arg-type]
                           pipeline.bus, pipeline.settings.topics, pipeline.clock)
        stop = asyncio.Event()
        running = asyncio.create_task(acks.run(stop))
        for _ in range(100):  # bounded: two refusals wait 0.5 s and 1 s
            await asyncio.sleep(0.05)
            if pipeline.outbox.counts()["SENT"] == 0:
                break
        stop.set()
        await running
        await acks.close()
        assert pipeline.outbox.counts()["SENT"] == 0
    finally:
        await pipeline.stop()


async def test_step_1_4_the_ack_consumer_stops_on_an_error_that_is_not_an_outage(
        tmp_path: Path) -> None:
    pipeline = await loaded_pipeline(pipeline_settings("memory://", tmp_path, "acks-bug"))
    try:
        await pipeline.relay.drain()
        await pipeline.mdm_worker.drain()

        class Broken:
            def acknowledge(self, *_: Any) -> Any:
                raise ValueError("a bug, not an outage")

        acks = AckConsumer(Broken(), pipeline.bus,  # type: ignore[arg-type]
                           pipeline.settings.topics, pipeline.clock)
        with pytest.raises(ValueError, match="a bug"):
            await asyncio.wait_for(acks.run(asyncio.Event()), 10)
        await acks.close()
    finally:
        await pipeline.stop()


async def test_step_1_4_the_relay_waits_an_outage_out(tmp_path: Path) -> None:
    pipeline = await loaded_pipeline(pipeline_settings("memory://", tmp_path, "relay-outage"))
    try:
        pending = pipeline.outbox.counts()["PENDING"]
        assert pending > 0
        relay = Relay(OutboxDown(pipeline.outbox, ["next_batch", "mark_sent"]),  # type: ignore[arg-type]
                      pipeline.bus, pipeline.settings.topics.sync_requests, pipeline.clock)
        stop = asyncio.Event()
        running = asyncio.create_task(relay.run(stop))
        started = dt.datetime.now()
        while pipeline.outbox.counts()["PENDING"] and dt.datetime.now() - started < dt.timedelta(
                seconds=10):
            await asyncio.sleep(0.05)
        stop.set()
        report = await running
        assert pipeline.outbox.counts()["PENDING"] == 0
        # The batch whose marking was refused is marked once the database is back, not
        # published again.
        assert report.marked_sent == pending
        assert len(await read_all(pipeline, pipeline.settings.topics.sync_requests)) == pending
    finally:
        await pipeline.stop()


async def _stop_published_unmarked_then_canceled(pipeline: LocalPipeline) -> Relay:
    """A tenant's stop published by a relay whose marking the database refused, then canceled
    (its pending request discarded as "undone before it was sent"); returns that relay."""
    run(pipeline, RequestStop(account_id="A-TN-01", sa_ids=("SA-TN01-E",),
                              stop_date=dt.date(2025, 3, 14)))
    relay = Relay(OutboxDown(pipeline.outbox, ["mark_sent"]),  # type: ignore[arg-type]
                  pipeline.bus, pipeline.settings.topics.sync_requests, pipeline.clock)
    with pytest.raises(OperationalError):
        await relay.relay_batch()  # published, not marked
    run(pipeline, CancelPendingStop(sa_id="SA-TN01-E"))
    assert not pipeline.outbox.find(state=SyncRequestState.PENDING, entity_type="SA",
                                    entity_id="SA-TN01-E")
    assert "DISCARDED" in {r.state.value for r in pipeline.outbox.find(
        entity_type="SA", entity_id="SA-TN01-E")}
    return relay


def _assert_the_cancel_reached_mdm(pipeline: LocalPipeline) -> None:
    tenant = pipeline.mdm.get_us("SA-TN01-E")
    assert tenant is not None
    assert tenant.end_date is None
    assert_ccb_and_mdm_agree(pipeline.outbox, pipeline.mdm, pipeline.admin)


async def test_step_3_0_a_stop_canceled_while_its_marking_waits_for_the_database_converges(
        tmp_path: Path) -> None:
    """The relay publishes a tenant's stop, the database goes away before the stop is marked
    sent, and the stop is canceled as soon as it is back (its pending request discarded as
    "undone before it was sent"). The stop is on the topic all the same: the relay marks the
    batch it had published before reading anything new, which queues the canceled state, and
    MDM ends where CCB is."""
    pipeline = await loaded_pipeline(pipeline_settings("memory://", tmp_path, "undone"))
    try:
        await pipeline.settle()
        relay = await _stop_published_unmarked_then_canceled(pipeline)
        await relay.relay_batch()  # the database is back: the published batch is marked
        await pipeline.settle()

        _assert_the_cancel_reached_mdm(pipeline)
    finally:
        await pipeline.stop()


async def test_step_3_0_a_stop_canceled_after_its_relay_died_unmarked_converges(
        tmp_path: Path) -> None:
    """The relay publishes a tenant's stop and its process dies before the stop is marked
    sent; the stop is canceled (its pending request discarded as "undone before it was
    sent"), so nothing is queued for the cancel. MDM applies the stop all the same and
    answers it: that answer queues the canceled state again, and MDM ends where CCB is."""
    pipeline = await loaded_pipeline(pipeline_settings("memory://", tmp_path, "died"))
    try:
        await pipeline.settle()
        await _stop_published_unmarked_then_canceled(pipeline)  # and its process is gone

        await pipeline.mdm_worker.drain()  # MDM applies the stop and answers it
        stopped = pipeline.mdm.get_us("SA-TN01-E")
        assert stopped is not None
        assert stopped.end_date == dt.date(2025, 3, 14)
        answered = await pipeline.acks.drain()
        assert answered.verdicts["APPLIED_DISCARDED"] >= 1
        assert pipeline.outbox.find(state=SyncRequestState.PENDING, entity_type="SA",
                                    entity_id="SA-TN01-E")

        await pipeline.settle()  # relay, MDM and the answers again
        _assert_the_cancel_reached_mdm(pipeline)
    finally:
        await pipeline.stop()
