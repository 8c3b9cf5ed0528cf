"""run_mdm_worker: opens the store (schema created), runs the chosen engine, stops on the event,
and serves the health endpoint while it runs."""

from __future__ import annotations

import asyncio
import socket
import uuid
from pathlib import Path

import pytest

from sync.config.settings import Settings
from sync.mapping.codec import encode
from sync.storage.mdm import MdmStore
from sync.transport.memory import memory_bus
from sync.transport.topics import sync_topic_specs
from sync.worker.mdm import run_mdm_worker
from sync.worker.stats import Verdict, WorkerStats
from tests.unit.mapping.builders import sa_message
from tests.unit.worker.support import ADMIN, CLOCK
from tests.unit.worker.test_health import get


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_loop_engine_consumes_on_a_fresh_store_and_serves_health(tmp_path: Path) -> None:
    settings = Settings(broker_url=f"memory://entry-{uuid.uuid4().hex[:8]}",
                        mdm_db_url=f"sqlite:///{tmp_path / 'mdm.db'}")
    bus = memory_bus(settings.broker_url.removeprefix("memory://"))
    await bus.create_topics(sync_topic_specs(settings))
    message = sa_message()
    await bus.publish(settings.topics.sync_requests, message.key.encode(), encode(message))
    stop, stats, port = asyncio.Event(), WorkerStats(), free_port()
    running = asyncio.create_task(run_mdm_worker(settings, ADMIN, CLOCK, stop, engine="loop",
                                                 health_port=port, stats=stats))
    for _ in range(300):
        if stats.acks_published == 1:
            break
        await asyncio.sleep(0.01)
    status, body = await get(port)
    stop.set()
    await asyncio.wait_for(running, 10)
    assert (status, body["counts"]["applied"]) == (200, 1)
    assert stats.counts[Verdict.APPLIED] == 1
    store = MdmStore(settings.mdm_db_url, ADMIN)
    assert store.get_us(message.external_id) is not None
    store.dispose()


async def test_the_faust_engine_needs_kafka(tmp_path: Path) -> None:
    settings = Settings(mdm_db_url=f"sqlite:///{tmp_path / 'mdm.db'}")
    with pytest.raises(ValueError, match="the faust engine needs a kafka:// broker"):
        await run_mdm_worker(settings, ADMIN, CLOCK, asyncio.Event(), engine="faust")
