"""PostgreSQL restarted under the MDM worker, mid-stream: once as an administrator restarts it
(``pg_ctl stop -m fast``: every session ended), once as a crash (``-m immediate``: recovery on
the next start), each time down for a few seconds. The worker process survives both (a store
outage is waited out on the record it was consuming, nothing is read past it) and every
message is then applied exactly once.

The server is the test's own (the session's shared one is never restarted)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from sync.devtools.postgres import ThrowawayPostgres
from tests.faults.conftest import StreamRig, open_stream_rig
from tests.faults.support import (
    WorkerProcess,
    answer_rows,
    assert_stream_applied_once,
    budget_s,
    change_stream,
    keyed,
    own_postgres,
    publish_stream,
    wait_for,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow,
              pytest.mark.timeout(900)]

STREAM = 6_000
DOWN_S = 5.0
RESTARTS: tuple[tuple[float, Literal["fast", "immediate"]], ...] = (
    (0.25, "fast"), (0.6, "immediate"))


@pytest.fixture
async def pg_rig(kafka_bootstrap: str) -> AsyncIterator[tuple[StreamRig, ThrowawayPostgres]]:
    server = own_postgres()
    rig = await open_stream_rig(kafka_bootstrap, server.url, "pg-restart")
    try:
        yield rig, server
    finally:
        rig.store.dispose()
        await rig.bus.stop()
        server.stop()


def answered(rig: StreamRig) -> int:
    """Answers stored so far; -1 while the database does not answer."""
    try:
        return answer_rows(rig.store)
    except DBAPIError:
        return -1


def sessions(rig: StreamRig) -> str:
    """The server's sessions and what each waits for, for a time-out's message."""
    try:
        with rig.store.engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT pid, state, wait_event_type, wait_event, xact_start, "
                "left(query, 160) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()")).all()
    except DBAPIError as error:
        return f"sessions: {error}"
    return "sessions:\n" + "\n".join(f"  {tuple(row)}" for row in rows)


async def test_postgres_restarted_twice_under_the_worker_loses_nothing(
        pg_rig: tuple[StreamRig, ThrowawayPostgres], tmp_path: Path) -> None:
    rig, server = pg_rig
    messages = change_stream(STREAM)
    await publish_stream(rig.bus, rig.topic, [keyed(m) for m in messages])
    worker = WorkerProcess.mdm(rig.settings, tmp_path / "worker.log").start()
    restarted_at: list[int] = []
    try:
        for fraction, mode in RESTARTS:
            target = int(len(messages) * fraction)
            await wait_for(lambda t=target: answered(rig) >= t or not worker.alive,
                           budget_s(len(messages)), f"{target:,} messages consumed",
                           detail=worker.stacks)
            assert worker.alive, worker.log_tail()
            await asyncio.to_thread(server.restart, down_s=DOWN_S, mode=mode)
            restarted_at.append(answered(rig))
            assert worker.alive, worker.log_tail()  # it rode the outage out
        await wait_for(lambda: (answered(rig) >= len(messages)
                                and not rig.store.unpublished(1)) or not worker.alive,
                       budget_s(len(messages)), "the worker to catch up after the restarts",
                       detail=lambda: (f"answered {answered(rig):,} of {len(messages):,}, "
                                       f"restarted at {restarted_at}\n{sessions(rig)}\n"
                                       f"{worker.stacks()}"))
        assert worker.alive, worker.log_tail()
        assert worker.stop() == 0, worker.log_tail()
    finally:
        worker.ensure_stopped()

    assert restarted_at[-1] < len(messages), f"restarted too late: {restarted_at}"
    await assert_stream_applied_once(rig.store, rig.bus, rig.topic, messages)
