"""A sync topic of its own on the session's broker and an MDM store, for the fault tests that
publish a stream straight onto the topic."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sync.config.settings import Settings
from sync.storage.mdm import MdmStore
from sync.transport.kafka import KafkaBus
from sync.transport.topics import sync_topic_specs
from tests.faults.support import fault_settings
from tests.unit.mdm.builders import default_admin

ADMIN = default_admin()


@dataclass
class StreamRig:
    settings: Settings
    bus: KafkaBus
    store: MdmStore

    @property
    def topic(self) -> str:
        return self.settings.topics.sync_requests


async def open_stream_rig(bootstrap: str, mdm_db_url: str, prefix: str) -> StreamRig:
    settings = fault_settings(f"kafka://{bootstrap}", prefix, mdm_db_url=mdm_db_url)
    bus = KafkaBus(bootstrap)
    await bus.start()
    await bus.create_topics(sync_topic_specs(settings))
    store = MdmStore(mdm_db_url, ADMIN)
    store.create_schema()
    return StreamRig(settings, bus, store)


@pytest.fixture
async def stream_rig(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[StreamRig]:
    """Topics on the session's broker, an MDM store in a SQLite file."""
    rig = await open_stream_rig(kafka_bootstrap, f"sqlite:///{tmp_path / 'mdm.db'}", "fault")
    yield rig
    rig.store.dispose()
    await rig.bus.stop()
