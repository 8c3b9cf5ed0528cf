"""Rebuilding an MDM store from the in-process bus: through the worker's processing, an empty
store only, and an order-sensitive rejection applied again once the other US is in place."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest

from sync.clock import FixedClock
from sync.config.admin import load_admin_config
from sync.mapping.codec import encode
from sync.mapping.messages import SaSyncMessage
from sync.mdm.model import UsStatus
from sync.pipeline.stores import open_mdm_store
from sync.reconcile.mdm_replay import ReplayTargetNotEmptyError, replay_into_mdm
from sync.storage.mdm import MdmStore
from sync.transport.bus import Message, TopicSpec
from sync.transport.memory import MemoryBus
from tests.unit.mapping.builders import sa_message

ADMIN = load_admin_config()
TOPIC = "sync"
START = dt.date(2025, 3, 1)
STOP = dt.date(2025, 3, 14)
CLOCK = FixedClock(dt.date(2025, 3, 3))


@pytest.fixture
def store(tmp_path: Path) -> MdmStore:
    return open_mdm_store(f"sqlite:///{tmp_path / 'mdm.db'}", ADMIN)


async def bus_with(*messages: SaSyncMessage | tuple[bytes, bytes]) -> MemoryBus:
    bus = MemoryBus(f"replay-mdm-{uuid.uuid4().hex[:8]}")
    await bus.create_topics([TopicSpec(TOPIC, 1, compacted=True)])
    await bus.publish_batch(TOPIC, [
        Message(*item) if isinstance(item, tuple) else Message(item.key.encode(), encode(item))
        for item in messages])
    return bus


async def test_every_record_is_consumed_with_its_position_and_answer(store: MdmStore) -> None:
    bus = await bus_with(sa_message("SA-1"), sa_message("SA-1", version=2, sa_status="30",
                                                        end=STOP),
                         (b"SA:SA-2", b"{broken"))
    report = await replay_into_mdm(bus, TOPIC, store, CLOCK)
    assert report.records == 3
    assert dict(report.verdicts) == {"applied": 2, "dead_lettered": 1}
    us = store.get_us("SA-1")
    assert us is not None
    assert (us.last_applied_version, us.end_date) == (2, STOP)
    assert store.last_positions(TOPIC) == {0: 2}
    assert len(store.unpublished(100)) == 3  # two acknowledgements and one dead letter


async def test_step_4_7_a_landlord_start_rejected_before_the_tenant_stop_is_applied_after(
        store: MdmStore) -> None:
    """The landlord's start overlaps the tenant's open link until the tenant's stop is read;
    live, CCB would send it again; the replay applies it again after the pass."""
    landlord = sa_message("SA-LL", start=STOP, sa_status="10",
                          external_account_id="ACCT-LL")
    bus = await bus_with(sa_message("SA-TN"), landlord,
                         sa_message("SA-TN", version=2, sa_status="30", end=STOP))
    report = await replay_into_mdm(bus, TOPIC, store, CLOCK)
    assert report.verdicts["rejected"] == 1
    assert report.reapplied == 1
    rebuilt = store.get_us("SA-LL")
    assert rebuilt is not None
    assert (rebuilt.status, rebuilt.start_date) == (UsStatus.PENDING, STOP)


async def test_a_store_that_is_not_empty_is_refused_and_left_as_it_is(store: MdmStore) -> None:
    bus = await bus_with(sa_message("SA-1"))
    await replay_into_mdm(bus, TOPIC, store, CLOCK)
    with pytest.raises(ReplayTargetNotEmptyError,
                       match=r"not empty \(.*mdm_usage_subscriptions: 1 rows"):
        await replay_into_mdm(bus, TOPIC, store, CLOCK)
    assert store.last_positions(TOPIC) == {0: 0}


async def test_answers_can_be_marked_published(store: MdmStore) -> None:
    bus = await bus_with(sa_message("SA-1"), sa_message("SA-2"))
    report = await replay_into_mdm(bus, TOPIC, store, CLOCK, mark_answers_published=True)
    assert report.answers_marked_published == 2
    assert store.unpublished(100) == []
