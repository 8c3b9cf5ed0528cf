"""A run seen by a page or an answer is one consistent view, even while its thread ends it:
never ``RUNNING`` with a result, never ended without its finish time."""

from __future__ import annotations

import datetime as dt
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from sync.api.runs import Run, Runs, RunState

START = dt.datetime(2025, 3, 3, 12, 0, tzinfo=dt.UTC)


def _finished() -> dt.datetime:
    return START + dt.timedelta(minutes=1)


def test_a_snapshot_keeps_what_it_saw_while_the_run_ends_after_it() -> None:
    runs: Runs[str] = Runs("RS", keep=5)
    release = threading.Event()
    live = runs.start("resend", START, lambda _run: (release.wait(10), "done")[1], _finished)
    seen = runs.newest_first()[0]
    release.set()
    assert live.ended.wait(10)

    assert (seen.state, seen.result, seen.finished_at) == (RunState.RUNNING, None, None)
    assert (live.state, live.result, live.finished_at) == (RunState.FINISHED, "done",
                                                           _finished())
    now = runs.newest_first()[0]
    assert (now.state, now.result, now.finished_at) == (RunState.FINISHED, "done", _finished())
    # The copy shares the run's stop: a stop asked on what a page showed is the run's.
    assert seen.stop is live.stop


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Threads switched as often as the interpreter allows, so a view read across the run's
    end is met within a bounded loop."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def test_views_read_while_runs_end_are_never_half_ended(busy_switching: None) -> None:
    runs: Runs[str] = Runs("RS", keep=3)
    torn: list[str] = []
    stop_reading = threading.Event()

    def read() -> None:
        while not stop_reading.is_set():
            for run in runs.newest_first():
                # A view reads one field, does other work (a page queries the database), then
                # reads the next: here the other work is a yield to the run's thread.
                running = run.state is RunState.RUNNING
                time.sleep(0)
                result, finished_at = run.result, run.finished_at
                if running != (result is None) or running != (finished_at is None):
                    torn.append(f"{run.id} seen {'RUNNING' if running else 'ended'} with "
                                f"result={result!r} finished_at={finished_at}")

    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        for _ in range(3_000):  # bounded: each run ends at once
            runs.start("resend", START, lambda _run: "done", _finished).ended.wait(10)
            if torn:
                break
    finally:
        stop_reading.set()
        for reader in readers:
            reader.join(10)
    assert torn == [], f"views read across a run's end: {torn[:3]}"


def test_a_run_ended_by_an_error_is_seen_failed_with_its_error_and_no_result() -> None:
    runs: Runs[str] = Runs("RS", keep=5)

    def fail(_run: Run[str]) -> str:
        raise LookupError("the database went away")

    live = runs.start("resend", START, fail, _finished)
    assert live.ended.wait(10)
    seen = live.snapshot()
    assert (seen.state, seen.result, type(seen.error)) == (RunState.FAILED, None, LookupError)
    assert seen.error_text() == ("LookupError: the run met an unexpected error; it is logged")
