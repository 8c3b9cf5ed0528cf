"""The MDM worker process killed with SIGKILL three times, at three different points of a
100,000-message stream (``C2M_SYNC_FAULT_STREAM`` to change the size), and started again each
time: every message is answered once and every change applied exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.conftest import StreamRig
from tests.faults.support import (
    FAULT_STREAM,
    WorkerProcess,
    answer_rows,
    assert_stream_applied_once,
    budget_s,
    change_stream,
    keyed,
    publish_stream,
    read_acknowledgements,
    wait_for,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow,
              pytest.mark.timeout(int(budget_s(FAULT_STREAM, fixed_s=600)))]

# Where the kills land, as fractions of the stream consumed: early, middle, late.
KILL_AT = (0.12, 0.47, 0.83)


async def test_worker_killed_three_times_mid_stream_loses_nothing_and_applies_nothing_twice(
        stream_rig: StreamRig, tmp_path: Path) -> None:
    rig = stream_rig
    messages = change_stream(FAULT_STREAM)
    await publish_stream(rig.bus, rig.topic, [keyed(m) for m in messages])
    worker = WorkerProcess.mdm(rig.settings, tmp_path / "worker.log")
    # One budget for the whole stream; each kill costs a restart and a session timeout.
    budget = budget_s(len(messages))
    killed_at: list[int] = []
    try:
        for fraction in KILL_AT:
            worker.start()
            target = int(len(messages) * fraction)
            await wait_for(lambda t=target: answer_rows(rig.store) >= t or not worker.alive,
                           budget, f"{target:,} messages consumed (start {worker.starts})")
            assert worker.alive, worker.log_tail()
            worker.kill()
            killed_at.append(answer_rows(rig.store))
        worker.start()
        await wait_for(lambda: (answer_rows(rig.store) >= len(messages)
                                and not rig.store.unpublished(1)) or not worker.alive,
                       budget, "the last start to catch up")
        assert worker.alive, worker.log_tail()
        assert worker.stop() == 0, worker.log_tail()  # a clean stop on SIGTERM
    finally:
        worker.ensure_stopped()

    # The kills landed where intended: in the middle of the stream, at three different points.
    assert killed_at == sorted(killed_at)
    assert len(set(killed_at)) == 3
    assert killed_at[-1] < len(messages), f"killed too late to prove anything: {killed_at}"
    await assert_stream_applied_once(rig.store, rig.bus, rig.topic, messages)
    # Every sync request has its acknowledgement on the ack topic (repeats allowed: answers
    # are published at least once, and a kill between publishing and marking repeats some).
    acks = await read_acknowledgements(rig.bus, rig.settings.topics.acknowledgements,
                                       len(messages), timeout_s=300)
    assert {ack.sync_request_id for ack in acks} == {m.sync_request_id for m in messages}
    assert {ack.outcome.value for ack in acks} == {"SYNCHRONIZED"}
