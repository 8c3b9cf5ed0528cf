"""The batch run locks of a CCB database (:mod:`sync.batches.run_locks`).

- **SQLite file**: an ``flock`` on ``<database>-batch-<CODE>``, a file beside the database
  like the writer turns' (:mod:`sync.storage.writer_turns`). The holder writes who it is into
  the file once it has the lock; a refused run reads it back. The file is emptied, never
  removed, on release: removing a lock file races with a run opening it. A file removed or
  replaced by hand while a run holds it would let a second run lock a new one: the lease
  check sees that the path no longer names the file the run locked.
- **PostgreSQL**: a session-level advisory lock, ``pg_try_advisory_lock(namespace, crc32 of
  the code)``, taken on a connection of its own kept for the run in autocommit (a session
  left idle in a transaction for an hour-long run would meet
  ``idle_in_transaction_session_timeout``). The session's ``application_name`` names the
  holder, so a refused run, and a DBA looking at ``pg_stat_activity``, can see who it is.
  Every CCB process on any host sees the same lock. The run's lease check is a round trip on
  that session before every unit of work: it keeps the session from ever being idle (so
  ``idle_session_timeout`` cannot end it), and a session ended all the same (a restart, a
  DBA's ``pg_terminate_backend``) is found there. A release on such a session does not hide
  the run's own error: the lock went with the session, and the connection is closed rather
  than pooled, so no pooled session can keep a lock a failed release left.
- **SQLite in memory**: a lock in the process (only that process can reach the database).

Both database locks are the system's: a holder that dies, even by SIGKILL, frees its lock at
once.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import weakref
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from sync.batches.run_locks import (
    BatchBusyError,
    BatchLockLostError,
    LocalRunLocks,
    RunLease,
    RunLocks,
    holder_description,
    this_process,
    utc_text,
)
from sync.storage.writer_turns import database_file

# First key of every advisory lock of c2m-sync's batch runs ('c2ms'), so that they cannot
# collide with another application's single-key locks on the same database.
ADVISORY_NAMESPACE = 0x63326D73
# PostgreSQL keeps NAMEDATALEN - 1 bytes of an application name.
_APPLICATION_NAME_BYTES = 63
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
log = logging.getLogger("sync.storage")


def run_locks_for(engine: Engine) -> RunLocks:
    """The run locks of the CCB database behind ``engine``."""
    if engine.dialect.name == "postgresql":
        return PostgresRunLocks(engine)
    file = database_file(engine.url.database)
    return _in_memory(engine) if file is None else SqliteRunLocks(file)


_IN_MEMORY: weakref.WeakKeyDictionary[Engine, LocalRunLocks] = weakref.WeakKeyDictionary()


def _in_memory(engine: Engine) -> LocalRunLocks:
    return _IN_MEMORY.setdefault(engine, LocalRunLocks())


class SqliteRunLocks:
    """Run locks of the SQLite database file at ``database``."""

    def __init__(self, database: Path) -> None:
        self.database = database

    def path(self, code: str) -> Path:
        return Path(f"{self.database}-batch-{_UNSAFE.sub('_', code)}")

    @contextmanager
    def hold(self, code: str) -> Iterator[RunLease]:
        # A descriptor of its own each time: flock locks belong to the open file, so a second
        # run in the same process is refused like one in another process.
        path = self.path(code)
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise BatchBusyError(code, _recorded_holder(descriptor)) from None
            try:
                os.ftruncate(descriptor, 0)
                os.pwrite(descriptor, holder_description().encode("utf-8"), 0)
                yield _FileLease(code, path, descriptor)
            finally:
                os.ftruncate(descriptor, 0)
                fcntl.flock(descriptor, fcntl.LOCK_UN)
        finally:
            os.close(descriptor)


class _FileLease:
    """A lock file's lease: the path still names the file the run locked."""

    def __init__(self, code: str, path: Path, descriptor: int) -> None:
        self._code, self._path, self._descriptor = code, path, descriptor

    def check(self) -> None:
        try:
            on_disk = os.stat(self._path)
        except FileNotFoundError:
            raise BatchLockLostError(self._code, f"its lock file {self._path} was removed "
                                                 "while the run held it") from None
        held = os.fstat(self._descriptor)
        if (on_disk.st_dev, on_disk.st_ino) != (held.st_dev, held.st_ino):
            raise BatchLockLostError(self._code, f"its lock file {self._path} was replaced "
                                                 "while the run held it")


def _recorded_holder(descriptor: int) -> str:
    recorded = os.pread(descriptor, 1024, 0).decode("utf-8", "replace").strip()
    # Empty for the instant between the holder's flock and its write.
    return recorded or "another process, which has just started it"


def _advisory_key(code: str) -> int:
    """The code's key as PostgreSQL's signed ``int4``."""
    key = zlib.crc32(code.encode("utf-8"))
    return key - (1 << 32) if key >= 1 << 31 else key


class PostgresRunLocks:
    """Run locks of the PostgreSQL database behind ``engine``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def hold(self, code: str) -> Iterator[RunLease]:
        key = _advisory_key(code)
        prefix = f"c2m-sync batch {code} "
        name = _truncated(prefix + this_process())
        with self.engine.connect() as connection:
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            got = False
            try:
                connection.execute(text("SELECT set_config('application_name', :name, false)"),
                                   {"name": name})
                got = bool(connection.execute(
                    text("SELECT pg_try_advisory_lock(:namespace, :key)"),
                    {"namespace": ADVISORY_NAMESPACE, "key": key}).scalar_one())
                if not got:
                    raise BatchBusyError(code, _holder(connection, prefix, key))
                yield _SessionLease(code, connection)
            finally:
                _release(connection, code, key if got else None)


class _SessionLease:
    """An advisory lock's lease: its session still answers (a session lock lasts as long as
    its session, so a session that answers still holds it)."""

    def __init__(self, code: str, connection: Connection) -> None:
        self._code, self._connection = code, connection
        self._lost: str | None = None

    def check(self) -> None:
        if self._lost is None:
            try:
                self._connection.execute(text("SELECT 1"))
                return
            except DBAPIError as error:
                # SQLAlchemy has invalidated the connection: later checks give the same answer.
                self._lost = f"its PostgreSQL session ended: {_first_line(error)}"
                raise BatchLockLostError(self._code, self._lost) from error
        raise BatchLockLostError(self._code, self._lost)


def _release(connection: Connection, code: str, key: int | None) -> None:
    """Unlock ``key`` (None: not got) and take the run's name off the session before it goes
    back to the pool; on a session that has ended, close the connection instead, without an
    error of its own (the lock went with the session, and the run's own error, if any, is
    the one to see)."""
    if connection.invalidated:  # a lease check found the session ended
        log.warning("batch %s: its lock's PostgreSQL session had ended; the lock went with it",
                    code)
        return
    try:
        if key is not None:
            connection.execute(text("SELECT pg_advisory_unlock(:namespace, :key)"),
                               {"namespace": ADVISORY_NAMESPACE, "key": key})
        connection.execute(text("RESET application_name"))
    except DBAPIError as error:
        log.warning("batch %s: its lock's PostgreSQL session could not be released (%s); "
                    "the connection is closed, which ends the lock", code, _first_line(error))
        connection.invalidate()


def _first_line(error: DBAPIError) -> str:
    return (str(error.orig).strip().splitlines() or [type(error.orig).__name__])[0]


def _holder(connection: Connection, prefix: str, key: int) -> str:
    """The session holding the lock ``key``: the holder's name for itself, when it was last
    active (its last statement is its lease check before a unit of work, not the lock's: the
    lock's time is not kept), its backend and client."""
    row = connection.execute(text(
        "SELECT l.pid, a.application_name, a.query_start, a.client_addr FROM pg_locks l "
        "LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND l.classid::bigint = :namespace AND l.objid::bigint = :key"),
        {"namespace": ADVISORY_NAMESPACE, "key": key % (1 << 32)}).first()
    if row is None:
        return "another session, which has just ended it"
    pid, application_name, query_start, client = row
    # Without the pg_read_all_stats role another user's session shows neither.
    who = application_name.removeprefix(prefix) if application_name else \
        "a session of another database user"
    active = f", last active {utc_text(query_start)}" if query_start is not None else ""
    where = f" from {client}" if client is not None else ""
    return f"{who}{active}; PostgreSQL backend {pid}{where}"


def _truncated(name: str) -> str:
    encoded = name.encode("utf-8")[:_APPLICATION_NAME_BYTES]
    return encoded.decode("utf-8", "ignore")
