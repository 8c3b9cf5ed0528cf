"""The CCB database (PostgreSQL) restarted under ``c2m-sync worker ccb`` while CCB commands keep
coming: once as an administrator restarts it (``pg_ctl stop -m fast``), once as a crash
(``-m immediate``), each time down for a few seconds. The relay, the acknowledgement consumer
and ``SYNC-TIMEOUT`` wait the outage out; the worker never exits, and once the database is
back everything converges: every request answered, CCB and MDM equal per SA, every version
applied once.

The server keeps every confirmed transaction through a crash (``synchronous_commit = on``, as
in production): what a database that loses confirmed transactions costs on the CCB side is in
``docs/sync-pipeline.md``."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest

from sync.devtools.postgres import ThrowawayPostgres
from tests.faults.support import (
    Clerk,
    fault_settings,
    own_postgres,
    start_pipeline,
    unsettled,
    wait_for,
)
from tests.integration.pipeline_support import ADMIN

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow,
              pytest.mark.timeout(900)]

TENANTS = 120
DOWN_S = 5.0
STOP_DATE = dt.date(2025, 3, 20)
RESTARTS: tuple[Literal["fast", "immediate"], ...] = ("fast", "immediate")


@pytest.fixture
def ccb_server() -> Iterator[ThrowawayPostgres]:
    server = own_postgres(synchronous_commit=True)
    try:
        yield server
    finally:
        server.stop()


async def test_steps_1_1_1_4_and_3_0_ccb_database_restarted_twice_under_the_ccb_worker_converges(
        ccb_server: ThrowawayPostgres, kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = fault_settings(f"kafka://{kafka_bootstrap}", "ccb-pg-restart",
                              ccb_db_url=ccb_server.url,
                              mdm_db_url=f"sqlite:///{tmp_path / 'mdm.db'}")
    pipeline = await start_pipeline(settings, ADMIN, TENANTS, tmp_path)
    outbox, ccb_worker = pipeline.outbox, pipeline.ccb_worker
    try:
        with Clerk(outbox, ADMIN, TENANTS, STOP_DATE, refusals_expected=True) as clerk:
            for mode in RESTARTS:
                await asyncio.sleep(2)
                await asyncio.to_thread(ccb_server.restart, down_s=DOWN_S, mode=mode)
                assert ccb_worker.alive, ccb_worker.log_tail()  # it rode the outage out
            await asyncio.sleep(3)
        assert not clerk.failures, clerk.failures
        assert clerk.refused > 0, "no CCB command met the database down"
        assert clerk.done > 0

        await wait_for(lambda: unsettled(outbox) == 0 or not pipeline.alive, 300,
                       "every sync request to be answered after the restarts",
                       detail=lambda: f"{outbox.counts()}\n{ccb_worker.stacks()}")
        # The outage was met, and waited out.
        assert "the CCB database is unavailable" in ccb_worker.log_tail(200_000)
        pipeline.assert_converged_and_stop(ADMIN)
    finally:
        pipeline.close()
