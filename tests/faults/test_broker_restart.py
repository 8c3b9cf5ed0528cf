"""The Kafka broker stopped for a few seconds and started again (same ports, same data) while
the whole pipeline runs: CCB commands keep writing sync requests, ``c2m-sync worker ccb``
relays them and records the answers, the MDM worker (faust) applies them. Both workers ride
the outage out, and once the broker is back everything converges: every request answered,
CCB and MDM equal per SA, every version applied once.

The broker is the test's own (the session's shared one is never stopped)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from sync.ccb.commands import CancelPendingStop, RequestStop
from sync.devtools.kafka import KafkaLauncherError
from sync.pipeline.relay import Relay
from sync.transport.bus import Message, Record
from tests.faults.support import (
    Clerk,
    RestartableBroker,
    assert_ccb_and_mdm_agree,
    fault_settings,
    start_pipeline,
    unsettled,
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
    pipeline = await start_pipeline(settings, ADMIN, TENANTS, tmp_path)
    outbox = pipeline.outbox
    try:
        with Clerk(outbox, ADMIN, TENANTS, STOP_DATE) as clerk:
            await asyncio.sleep(3)
            before_outage = clerk.done
            await asyncio.to_thread(own_broker.restart, DOWN_S)
            during_outage = clerk.done - before_outage
            await asyncio.sleep(5)
        assert not clerk.failures, clerk.failures
        assert during_outage > 0, "no CCB change was made while the broker was down"

        await wait_for(lambda: unsettled(outbox) == 0 or not pipeline.alive, 300,
                       "every sync request to be answered after the restart")
        pipeline.assert_converged_and_stop(ADMIN)
        # The clients' reconnection attempts (about 35 lines a second per worker while the
        # broker is down) are written once a minute per kind, with a count of the rest.
        for worker in (pipeline.ccb_worker, pipeline.mdm_worker):
            client_lines = [line for line in worker.log_path.read_text("utf-8").splitlines()
                            if " aiokafka" in line.split(":", 3)[-2]]
            assert 0 < len(client_lines) <= 30, "\n".join(client_lines[:60])
    finally:
        pipeline.close()


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
