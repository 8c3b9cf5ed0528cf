"""Writers of one SQLite database take the write lock in turns (``sync.storage.writer_turns``):
a writer that begins again right after committing does not keep the others out."""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from sync.storage.common import create_engine_for, write_transaction
from sync.storage.writer_turns import WriterTurns, turns_for

BATCH_UNITS = 150  # the busy writer's back-to-back transactions (bounded)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'turns.db'}")
    with write_transaction(engine) as connection:
        connection.execute(text("CREATE TABLE commits (seq INTEGER PRIMARY KEY, writer TEXT)"))
    return engine


def _busy_writer_and_one_other(engine: Engine) -> tuple[int, int]:
    """A writer commits ``BATCH_UNITS`` transactions back to back (each holding the lock a
    little while, like a batch run's chunks); once it is under way another writer asks for one
    transaction. Returns how many of the busy writer's transactions had committed when the
    other asked, and how many when the other's committed."""
    started = threading.Event()
    asked_at: list[int] = []

    def busy() -> None:
        for unit in range(BATCH_UNITS):
            with write_transaction(engine) as connection:
                connection.execute(text("INSERT INTO commits (writer) VALUES ('batch')"))
                if unit == 5:
                    started.set()  # the other asks while this one holds the lock
                threading.Event().wait(0.002)

    def other() -> None:
        started.wait(10)
        asked_at.append(6)  # the sixth unit is in progress
        with write_transaction(engine) as connection:
            connection.execute(text("INSERT INTO commits (writer) VALUES ('relay')"))

    threads = [threading.Thread(target=busy), threading.Thread(target=other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    with write_transaction(engine) as connection:
        order = [row[0] for row in connection.execute(
            text("SELECT writer FROM commits ORDER BY seq"))]
        connection.execute(text("DELETE FROM commits"))
    return asked_at[0], order.index("relay")


def test_step_1_4_a_relay_waiting_behind_a_batch_gets_the_next_turn(engine: Engine) -> None:
    # Without turns the other writer gets in only if one of its busy handler's attempts lands
    # in the instant between two of the batch's transactions: now and then, never every time.
    for _ in range(3):
        asked, committed = _busy_writer_and_one_other(engine)
        # right after the batch's transaction in progress when it asked
        assert committed - asked <= 1, (asked, committed)


def test_a_turn_not_had_within_the_timeout_goes_on_without_it(tmp_path: Path) -> None:
    turns = WriterTurns(tmp_path / "x.db", timeout_s=0.05)
    with turns.turn() as first:
        assert first
        with WriterTurns(tmp_path / "x.db", timeout_s=0.05).turn() as second:
            assert not second  # SQLite's own lock and busy timeout decide from here
    with turns.turn() as again:
        assert again


def test_a_process_that_dies_holding_its_turn_frees_it(tmp_path: Path) -> None:
    database = tmp_path / "x.db"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from pathlib import Path\n"
         "from sync.storage.writer_turns import WriterTurns\n"
         f"with WriterTurns(Path({str(database)!r}), 5).turn():\n"
         "    print('holding', flush=True)\n"
         "    time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        with WriterTurns(database, timeout_s=0.05).turn() as had:
            assert not had  # held by the other process
        holder.kill()
        holder.wait(10)
        with WriterTurns(database, timeout_s=5).turn() as had:
            assert had
    finally:
        holder.kill()
        holder.wait(10)


def test_a_database_in_memory_has_no_turns() -> None:
    assert turns_for(":memory:", 1) is None
    assert turns_for(None, 1) is None
    assert turns_for("/var/lib/c2m/ccb.db", 1) is not None


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@contextlib.contextmanager
def _turn_kept(database: Path) -> Iterator[threading.Event]:
    """Another writer of the process keeps its turn until the event yielded is set."""
    holding, let_go = threading.Event(), threading.Event()

    def holder() -> None:
        with WriterTurns(database, timeout_s=5).turn():
            holding.set()
            let_go.wait(30)

    thread = threading.Thread(target=holder)
    thread.start()
    assert holding.wait(10)
    try:
        yield let_go
    finally:
        let_go.set()
        thread.join(10)


def test_a_waiting_writer_blocks_instead_of_polling(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    database = tmp_path / "x.db"
    calls: list[int] = []
    flock = fcntl.flock

    def counted(descriptor: int, operation: int) -> None:
        calls.append(operation)
        flock(descriptor, operation)

    with _turn_kept(database) as let_go:
        monkeypatch.setattr(fcntl, "flock", counted)
        threading.Timer(0.3, let_go.set).start()
        with WriterTurns(database, timeout_s=5).turn() as had:
            assert had
    # The turnstile (free) once; the writer lock: one attempt, then one blocking wait; each
    # let go once. Polling every millisecond made some 300 attempts in the 0.3 s.
    exclusive = fcntl.LOCK_EX
    assert calls.count(exclusive | fcntl.LOCK_NB) == 2
    assert calls.count(exclusive) == 1


def test_a_wait_given_up_lets_the_lock_go_once_it_gets_it(tmp_path: Path) -> None:
    database = tmp_path / "x.db"
    before = _open_descriptors()
    with WriterTurns(database, timeout_s=5).turn() as first:
        assert first
        with WriterTurns(database, timeout_s=0.05).turn() as second:
            assert not second
    # The given-up wait's helper took the lock when the first let it go, and let it go at
    # once: the next writer has its turn, and no descriptor is left open.
    with WriterTurns(database, timeout_s=5).turn() as third:
        assert third
    for _ in range(100):
        if _open_descriptors() == before:
            break
        threading.Event().wait(0.01)
    assert _open_descriptors() == before


def _helpers() -> int:
    return sum(1 for thread in threading.enumerate() if thread.name == "c2m-writer-turn")


def _wait_until(condition: Callable[[], bool]) -> bool:
    for _ in range(500):
        if condition():
            return True
        threading.Event().wait(0.01)
    return condition()


def test_attempts_behind_a_stuck_writer_leave_one_helper_not_one_each(tmp_path: Path) -> None:
    """A writer that keeps its turn (a stuck process): every attempt of the others times out.
    They take over the helper the first one left blocked instead of starting one each, so
    threads and descriptors do not pile up; when the lock is let go, all is freed."""
    database = tmp_path / "x.db"
    before = (_helpers(), _open_descriptors())
    with _turn_kept(database):
        for _ in range(30):
            with WriterTurns(database, timeout_s=0.01).turn() as had:
                assert not had
        # One helper blocked (and its descriptor, and the stuck writer's two), not thirty.
        assert _helpers() == before[0] + 1
        assert _open_descriptors() <= before[1] + 3
    assert _wait_until(lambda: (_helpers(), _open_descriptors()) == before)
    with WriterTurns(database, timeout_s=5).turn() as had:
        assert had


def test_a_writer_that_takes_over_a_given_up_wait_gets_the_lock_through_it(
        tmp_path: Path) -> None:
    database = tmp_path / "x.db"
    before = _open_descriptors()
    seen: list[bool] = []

    def second() -> None:
        with WriterTurns(database, timeout_s=10).turn() as had:
            other = os.open(f"{database}-writer", os.O_RDWR)
            try:  # the lock is really held
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
                seen.append(False)
            except BlockingIOError:
                seen.append(had)
            finally:
                os.close(other)

    with _turn_kept(database) as let_go:
        with WriterTurns(database, timeout_s=0.01).turn() as had:
            assert not had  # its helper stays blocked, given up
        waiting = threading.Thread(target=second)
        waiting.start()
        threading.Event().wait(0.2)
        assert _helpers() == 1  # it waits through the helper it took over, not a second one
        let_go.set()
        waiting.join(10)
    assert seen == [True]
    with WriterTurns(database, timeout_s=0.01).turn() as had:
        assert had  # and let go after the block
    assert _wait_until(lambda: _open_descriptors() == before)
