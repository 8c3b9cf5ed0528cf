"""The batch run locks (``sync.storage.run_locks``), run against every adapter: a SQLite file,
PostgreSQL and SQLite in memory. A second run of a job over the same database is refused at
once, naming the holder; other jobs are free; the lock is let go at the end of the run, when
the run fails, and when its process is killed with SIGKILL (the database adapters)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from sync.batches import BatchBusyError, BatchLockLostError, RunLocks
from sync.storage.run_locks import PostgresRunLocks, SqliteRunLocks, run_locks_for

ROOT = Path(__file__).parents[2]


@pytest.fixture(params=["sqlite", "postgres", "memory"])
def engines(request: pytest.FixtureRequest) -> Iterator[tuple[Engine, Engine]]:
    """Two engines on one database, as two processes would have (one engine shared for a
    database in memory, which only one engine can reach)."""
    if request.param == "memory":
        engine = create_engine("sqlite://")
        yield engine, engine
        engine.dispose()
        return
    url = str(request.getfixturevalue(f"{request.param}_url"))
    first, second = create_engine(url), create_engine(url)
    yield first, second
    first.dispose()
    second.dispose()


def _locks(engines: tuple[Engine, Engine]) -> tuple[RunLocks, RunLocks]:
    return run_locks_for(engines[0]), run_locks_for(engines[1])


def test_the_adapter_follows_the_database(engines: tuple[Engine, Engine]) -> None:
    locks = run_locks_for(engines[0])
    expected = {"postgresql": PostgresRunLocks, "sqlite": SqliteRunLocks}
    if engines[0].url.database in (None, ""):
        assert not isinstance(locks, PostgresRunLocks | SqliteRunLocks)
        assert run_locks_for(engines[0]) is locks  # one process-wide lock per database
    else:
        assert isinstance(locks, expected[engines[0].dialect.name])


def test_a_second_run_of_a_job_is_refused_naming_the_holder_while_other_jobs_go(
        engines: tuple[Engine, Engine]) -> None:
    first, second = _locks(engines)
    with first.hold("SAACT"):
        with pytest.raises(BatchBusyError) as refused, second.hold("SAACT"):
            raise AssertionError("a second run of SAACT was let in")
        assert refused.value.code == "SAACT"
        # A lock file keeps when its run took it; PostgreSQL keeps no time of the lock, so
        # the refusal gives when the holding session was last active.
        when = ", last active " if engines[0].dialect.name == "postgresql" else " since "
        assert f"pid {os.getpid()} on {socket.gethostname()}{when}" in refused.value.holder
        assert str(refused.value).startswith(
            f"batch SAACT is already running ({refused.value.holder}); nothing was run")
        with second.hold("TD-SSFTL"):  # another job is free meanwhile
            pass
    # And the job itself once the run has ended.
    with second.hold("SAACT"), pytest.raises(BatchBusyError), first.hold("SAACT"):
        pass


def test_a_run_that_fails_lets_its_lock_go(engines: tuple[Engine, Engine]) -> None:
    first, second = _locks(engines)
    with pytest.raises(RuntimeError, match="database away"), first.hold("SAACT"):
        raise RuntimeError("database away")
    with second.hold("SAACT"):
        pass


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_holder_killed_with_sigkill_frees_the_lock_at_once(
        kind: str, request: pytest.FixtureRequest) -> None:
    """No lock outlives its process: nothing for an operator to clean up after a crash."""
    url = str(request.getfixturevalue(f"{kind}_url"))
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from sqlalchemy import create_engine\n"
         "from sync.storage.run_locks import run_locks_for\n"
         "with run_locks_for(create_engine(sys.argv[1])).hold('SAACT'):\n"
         "    print('held', flush=True)\n"
         "    time.sleep(120)\n", url],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
    engine = create_engine(url)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        locks = run_locks_for(engine)
        with pytest.raises(BatchBusyError) as refused, locks.hold("SAACT"):
            pass
        assert f"pid {holder.pid} on " in refused.value.holder  # the other process, named

        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        # PostgreSQL ends the backend once it reads the closed socket: within moments.
        deadline = time.monotonic() + 15
        while True:
            try:
                with locks.hold("SAACT"):
                    break
            except BatchBusyError:
                assert time.monotonic() < deadline, "the killed holder's lock was kept"
                time.sleep(0.1)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        engine.dispose()


def test_postgresql_names_the_holding_session_and_gives_its_connection_back_unnamed(
        postgres_url: str) -> None:
    """A DBA sees the run in ``pg_stat_activity``; the pooled connection it held goes back
    to the pool without the run's name."""
    engine = create_engine(postgres_url, pool_size=1, max_overflow=0)
    watcher = create_engine(postgres_url)
    names = text("SELECT application_name FROM pg_stat_activity "
                 "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    try:
        with run_locks_for(engine).hold("SAACT"):
            with watcher.connect() as connection:
                seen = {str(name) for name in connection.execute(names).scalars()}
            assert f"c2m-sync batch SAACT pid {os.getpid()} on " \
                f"{socket.gethostname()}"[:63] in seen
            with pytest.raises(BatchBusyError) as refused, \
                    run_locks_for(watcher).hold("SAACT"):
                pass
            assert ", last active " in refused.value.holder
            assert "; PostgreSQL backend " in refused.value.holder
        with engine.connect() as connection:  # the pool's one connection, the lock's
            assert connection.execute(text("SHOW application_name")).scalar_one() == ""
            assert connection.execute(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                "AND pid = pg_backend_pid()")).scalar_one() == 0
    finally:
        engine.dispose()
        watcher.dispose()


def test_sqlite_keeps_the_holder_in_a_file_beside_the_database_emptied_at_the_end(
        sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    locks = run_locks_for(engine)
    assert isinstance(locks, SqliteRunLocks)
    path = locks.path("TD-SSFTL")
    assert path.parent == Path(str(engine.url.database)).resolve().parent
    with locks.hold("TD-SSFTL"):
        assert path.read_text("utf-8").startswith(f"pid {os.getpid()} on ")
    assert path.read_text("utf-8") == ""
    assert locks.path("../../x y").name.endswith("-batch-.._.._x_y")  # stays beside it
    engine.dispose()


def test_the_lease_of_a_held_lock_checks_good_for_the_whole_run(
        engines: tuple[Engine, Engine]) -> None:
    first, _second = _locks(engines)
    with first.hold("SAACT") as lease:
        for _ in range(3):
            lease.check()


def _terminate(watcher: Engine, code: str) -> int:
    """End the session holding ``code``'s lock, as a DBA's ``pg_terminate_backend`` or a
    restart would: how many sessions were ended."""
    with watcher.connect() as connection:
        return int(connection.execute(text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name LIKE :name AND pid <> pg_backend_pid()"),
            {"name": f"c2m-sync batch {code} %"}).scalar_one())


def test_postgresql_a_session_ended_under_the_run_is_found_by_its_lease_and_hides_no_error(
        postgres_url: str) -> None:
    """The lock's session ended during the run: the lock is free for a second run, so the
    lease says so, naming why; the release that follows raises nothing of its own (the run's
    error is the one seen) and leaves no broken connection in the pool."""
    engine = create_engine(postgres_url, pool_size=1, max_overflow=0)
    watcher = create_engine(postgres_url)
    seen: list[BatchLockLostError] = []

    def run() -> None:
        with run_locks_for(engine).hold("SAACT") as lease:
            assert _terminate(watcher, "SAACT") == 1
            try:
                lease.check()
            except BatchLockLostError as lost:
                seen.append(lost)
            with run_locks_for(watcher).hold("SAACT"):  # why the run must stop: it is free
                pass
            raise RuntimeError("the run's own error")

    try:
        with pytest.raises(RuntimeError, match="the run's own error"):
            run()
        [lost] = seen
        assert lost.code == "SAACT"
        assert "its PostgreSQL session ended: terminating connection" in str(lost)
        with engine.connect() as connection:  # the pool's one connection works again
            assert connection.execute(text("SELECT 1")).scalar_one() == 1
        with run_locks_for(engine).hold("SAACT") as lease:
            lease.check()
    finally:
        engine.dispose()
        watcher.dispose()


def test_postgresql_a_release_on_an_ended_session_keeps_the_runs_error(
        postgres_url: str) -> None:
    """The session ends and the run fails before any lease check (the same restart): the
    release's unlock fails too, and the run's error is still the one raised."""
    engine = create_engine(postgres_url, pool_size=1, max_overflow=0)
    watcher = create_engine(postgres_url)

    def run() -> None:
        with run_locks_for(engine).hold("SAACT"):
            assert _terminate(watcher, "SAACT") == 1
            raise RuntimeError("the database went away")

    try:
        with pytest.raises(RuntimeError, match="the database went away"):
            run()
        with run_locks_for(engine).hold("SAACT") as lease:  # the pool's connection, renewed
            lease.check()
    finally:
        engine.dispose()
        watcher.dispose()


def test_postgresql_the_lease_check_keeps_the_session_from_idle_session_timeout(
        postgres_url: str) -> None:
    """A database whose sessions end after 1 s idle (``idle_session_timeout``, as a DBA may
    set it to reap leaked connections): checked between units of work, the lock's session
    outlives the timeout many times over; left idle, it ends and the lease finds it."""
    engine = create_engine(postgres_url, pool_size=1, max_overflow=0,
                           connect_args={"options": "-c idle_session_timeout=1000"})
    try:
        with run_locks_for(engine).hold("SAACT") as lease:
            for _ in range(12):  # bounded: 3.6 s, units of work 0.3 s apart
                time.sleep(0.3)
                lease.check()
            time.sleep(2.5)
            with pytest.raises(BatchLockLostError, match="its PostgreSQL session ended"):
                lease.check()
    finally:
        engine.dispose()


@pytest.mark.parametrize("how", ["removed", "replaced"])
def test_sqlite_a_lock_file_removed_or_replaced_under_the_run_is_found_by_its_lease(
        sqlite_url: str, how: str) -> None:
    """Removing the lock file of a run under way would let a second run lock a new file
    beside it: the run's lease sees that its path no longer names the file it locked."""
    engine = create_engine(sqlite_url)
    locks = run_locks_for(engine)
    assert isinstance(locks, SqliteRunLocks)
    path = locks.path("SAACT")
    with locks.hold("SAACT") as lease:
        path.unlink()
        if how == "replaced":
            path.write_text("", "utf-8")
        with pytest.raises(BatchLockLostError) as lost:
            lease.check()
        with run_locks_for(engine).hold("SAACT"):  # a second run gets in: the hazard
            pass
        with pytest.raises(BatchLockLostError, match="was replaced"):  # a new file now
            lease.check()
    assert str(lost.value).startswith(
        f"batch SAACT lost its run lock (its lock file {path} was {how} while the run held "
        "it) and stopped, so that no second run works beside it")
    engine.dispose()
