"""A CCB + MDM pair joined by the real pipeline, loaded with the sample building: what the
pipeline, reconciliation and interoperability tests start from."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sync.ccb.changes import Changes
from sync.ccb.dispatch import unit_of_work
from sync.ccb.loading import load_master_data, parse_text
from sync.clock import FixedClock
from sync.config.admin import AdminConfig, load_admin_config
from sync.config.settings import Settings, TopicNames
from sync.pipeline.local import LocalPipeline

EXAMPLE = Path(__file__).parents[2] / "examples" / "premise-landlord.yaml"
ADMIN = load_admin_config()
TODAY = dt.date(2025, 3, 3)


def pipeline_settings(broker_url: str, folder: Path, prefix: str,
                      partitions: int = 3) -> Settings:
    """SQLite files in ``folder`` and topic names of their own (a shared broker keeps the
    records of other tests)."""
    suffix = uuid.uuid4().hex[:8]
    return Settings(
        ccb_db_url=f"sqlite:///{folder / 'ccb.db'}", mdm_db_url=f"sqlite:///{folder / 'mdm.db'}",
        broker_url=broker_url, topic_partitions=partitions,
        topics=TopicNames(sync_requests=f"{prefix}-sync-{suffix}",
                          acknowledgements=f"{prefix}-acks-{suffix}",
                          dead_letters=f"{prefix}-dlq-{suffix}"))


async def loaded_pipeline(settings: Settings, admin: AdminConfig = ADMIN,
                          today: dt.date = TODAY) -> LocalPipeline:
    """A started pipeline whose CCB store holds the sample building (not yet synchronized)."""
    pipeline = LocalPipeline(settings, admin, FixedClock(today))
    await pipeline.start()
    pipeline.outbox.store.execute(load_master_data(
        parse_text(EXAMPLE.read_text("utf-8"), "example"), "example", admin,
        pipeline.clock.now(), "loader"))
    return pipeline


@asynccontextmanager
async def synchronized_pipeline(broker_url: str, folder: Path, prefix: str
                                ) -> AsyncIterator[LocalPipeline]:
    """A started pipeline on topics of its own, the sample building synchronized (every
    request SYNCHRONIZED); stopped on exit."""
    pipeline = await loaded_pipeline(pipeline_settings(broker_url, folder, prefix))
    try:
        await pipeline.settle()
        yield pipeline
    finally:
        await pipeline.stop()


def run(pipeline: LocalPipeline, command: object) -> Changes:
    """One CCB command through the outbox-backed store, on the pipeline's business date."""
    clock = pipeline.clock
    return pipeline.outbox.store.execute(unit_of_work(
        command, pipeline.admin, clock.business_date(), clock.now()))  # type: ignore[arg-type]
