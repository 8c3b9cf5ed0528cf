"""The Kafka broker stopped for a few seconds and started again (same ports, same data) while
the whole pipeline runs: CCB commands keep writing sync requests, ``c2m-sync worker ccb``
relays them and records the answers, the MDM worker (faust) applies them. Both workers ride
the outage out, and once the broker is back everything converges: every request answered,
CCB and MDM equal per SA, every version applied once.

The broker is the test's own (the session's shared one is never stopped)."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from sync.ccb.commands import CancelPendingStop, RequestStop
from sync.ccb.sync_requests import SyncRequestState
from sync.clock import FixedClock
from sync.devtools.kafka import KafkaLauncherError
from sync.pipeline.relay import Relay
from sync.pipeline.stores import open_mdm_store, open_outbox
from sync.storage.outbox import SqlOutbox
from sync.transport.bus import Message, Record
from tests.faults.support import (
    BUSINESS_DATE,
    RestartableBroker,
    WorkerProcess,
    assert_ccb_and_mdm_agree,
    create_topics,
    fault_settings,
    load_tenants,
    toggle_stop,
    wait_for,
)
from tests.integration.pipeline_support import ADMIN, loaded_pipeline, pipeline_settings, run

TENANTS = 150
DOWN_S = 8.0
STOP_DATE = dt.date(2025, 3, 20)


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[RestartableBroker]:
    broker = RestartableBroker(tmp_path / "broker", heap="384m")
    try:
        broker.start()
    except KafkaLauncherError as error:
        pytest.skip(f"Kafka (launcher) unavailable: {error}")
    try:
        yield broker
    finally:
        broker.stop()
        broker.remove_data()


class Clerk:
    """CCB commands from a thread of their own, one every ``pause_s``, until told to stop:
    changes keep coming before, during and after the outage."""

    def __init__(self, outbox: SqlOutbox, pause_s: float = 0.05) -> None:
        self.outbox = outbox
        self.pause_s = pause_s
        self.done = 0
        self.failures: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, daemon=True)

    def _work(self) -> None:
        n = 0
        while not self._stop.is_set():
            try:
                toggle_stop(self.outbox, ADMIN, n % TENANTS, STOP_DATE)
                self.done += 1
            except BaseException as error:  # the test reports it
                self.failures.append(error)
                return
            n += 7  # walk the tenants out of order
            self._stop.wait(self.pause_s)

    def __enter__(self) -> Clerk:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(60)


def unsettled(outbox: SqlOutbox) -> int:
    counts = outbox.counts()
    return sum(counts[state.value] for state in (SyncRequestState.PENDING,
                                                 SyncRequestState.SENT))


@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_broker_stopped_and_started_again_under_the_pipeline_converges(
        own_broker: RestartableBroker, tmp_path: Path) -> None:
    state = own_broker.state()
    assert state is not None
    settings = fault_settings(f"kafka://{state.bootstrap_servers}", "broker-restart",
                              ccb_db_url=f"sqlite:///{tmp_path / 'ccb.db'}",
                              mdm_db_url=f"sqlite:///{tmp_path / 'mdm.db'}")
    outbox = open_outbox(settings.ccb_db_url, ADMIN, FixedClock(BUSINESS_DATE))
    mdm = open_mdm_store(settings.mdm_db_url, ADMIN)
    load_tenants(outbox, ADMIN, TENANTS)
    await create_topics(settings)
    ccb_worker = WorkerProcess.ccb(settings, tmp_path / "ccb-worker.log")
    mdm_worker = WorkerProcess.mdm(settings, tmp_path / "mdm-worker.log")
    try:
        ccb_worker.start()
        mdm_worker.start()
        await wait_for(lambda: outbox.counts()["SYNCHRONIZED"] >= TENANTS * 2
                       or not (ccb_worker.alive and mdm_worker.alive), 240,
                       "the loaded tenants to synchronize")
        assert ccb_worker.alive, ccb_worker.log_tail()
        assert mdm_worker.alive, mdm_worker.log_tail()

        with Clerk(outbox) as clerk:
            await asyncio.sleep(3)
            before_outage = clerk.done
            await asyncio.to_thread(own_broker.restart, DOWN_S)
            during_outage = clerk.done - before_outage
            await asyncio.sleep(5)
        assert not clerk.failures, clerk.failures
        assert during_outage > 0, "no CCB change was made while the broker was down"

        await wait_for(lambda: unsettled(outbox) == 0
                       or not (ccb_worker.alive and mdm_worker.alive), 300,
                       "every sync request to be answered after the restart")
        assert ccb_worker.alive, ccb_worker.log_tail()
        assert mdm_worker.alive, mdm_worker.log_tail()
        assert_ccb_and_mdm_agree(outbox, mdm, ADMIN)
        assert ccb_worker.stop() == 0, ccb_worker.log_tail()
        assert mdm_worker.stop() == 0, mdm_worker.log_tail()
    finally:
        ccb_worker.ensure_stopped()
        mdm_worker.ensure_stopped()
        outbox.store.dispose()
        mdm.dispose()



class HeldUpBus:
    """The pipeline's bus, except that the relay's next publication waits (a broker that is
    down or slow) until ``release`` is set; the records are written when it resumes."""

    def __init__(self, bus: Any) -> None:
        self.bus = bus
        self.waiting = asyncio.Event()
        self.release = asyncio.Event()

    async def publish_batch(self, topic: str, messages: Sequence[Message]) -> list[Record]:
        self.waiting.set()
        await self.release.wait()
        return list(await self.bus.publish_batch(topic, messages))


async def test_step_3_0_a_stop_canceled_while_the_broker_holds_up_its_publication_converges(
        tmp_path: Path) -> None:
    """Steps 1.1 and 3.0 around a broker outage: the relay has read the stop's request and is
    waiting for the broker when the stop is canceled. The stop reaches MDM once the broker is
    back; the cancel must reach it too."""
    settings = pipeline_settings(f"memory://held-{uuid.uuid4().hex[:8]}", tmp_path, "held")
    pipeline = await loaded_pipeline(settings)
    try:
        await pipeline.settle()
        run(pipeline, RequestStop(account_id="A-TN-02", sa_ids=("SA-TN02-E",),
                                  stop_date=STOP_DATE))
        held = HeldUpBus(pipeline.bus)
        relay = Relay(pipeline.outbox, held, settings.topics.sync_requests,  # type: ignore[arg-type]
                      pipeline.clock)
        publishing = asyncio.create_task(relay.relay_batch())
        await asyncio.wait_for(held.waiting.wait(), 10)
        run(pipeline, CancelPendingStop(sa_id="SA-TN02-E", cancel_next_start=True))
        held.release.set()
        await asyncio.wait_for(publishing, 10)
        await pipeline.settle()
        assert_ccb_and_mdm_agree(pipeline.outbox, pipeline.mdm, ADMIN)
    finally:
        await pipeline.stop()
