"""SIGUSR1 makes a worker write where every thread and task is waiting, and it goes on."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from sync.worker.diagnostics import DUMP_SIGNAL, disable_stack_dumps, enable_stack_dumps


async def test_sigusr1_writes_the_stacks_of_threads_and_waiting_tasks(
        capfd: pytest.CaptureFixture[str]) -> None:
    loop = asyncio.get_running_loop()
    release = asyncio.Event()
    blocked = threading.Event()

    async def awaiting_the_broker_reply() -> str:
        await release.wait()
        return "answered"

    def waiting_on_the_store_lock() -> None:
        blocked.wait(10)

    thread = threading.Thread(target=waiting_on_the_store_lock, name="store-call")
    thread.start()
    task = asyncio.create_task(awaiting_the_broker_reply(), name="consume-loop")
    await asyncio.sleep(0)
    enable_stack_dumps(loop)
    try:
        os.kill(os.getpid(), DUMP_SIGNAL)
        for _ in range(50):  # the task dump comes on one of the loop's next turns
            await asyncio.sleep(0.01)
    finally:
        disable_stack_dumps(loop)
        blocked.set()
        thread.join(10)
    release.set()

    assert await task == "answered"  # the signal stopped nothing
    err = capfd.readouterr().err
    assert "waiting_on_the_store_lock" in err  # the thread stacks (faulthandler)
    assert "awaiting_the_broker_reply" in err  # the task stacks
    assert "consume-loop" in err
