"""One run of a batch job at a time per CCB database.

Two runs of the same job over the same database (a schedule's round and an operator's
``c2m-sync batch run``, a run started from the API while a cron job's is under way) would
select the same items and wait on each other's writes: every job is idempotent and reads its
facts in the unit of work that writes, so nothing would be wrong, but both would read every
item, each would apply a share of them, and neither report would say what the job did. So each
run holds its job's lock, and a second run is refused at once, naming the run that holds it.

The lock belongs to the database's adapter (:mod:`sync.storage.run_locks`): an operating
system lock on a file beside a SQLite database, a PostgreSQL advisory lock on a session of its
own. Either is freed by the system when the holder dies, however it dies: a run killed with
SIGKILL leaves nothing for an operator to clean up. :class:`LocalRunLocks` are those of a
database that lives in one process (SQLite in memory).

A lock can also go while its run goes on: PostgreSQL ends the lock's session (a restart, a
DBA's ``pg_terminate_backend``, ``idle_session_timeout``), or someone removes the lock file
beside a SQLite database. A second run would then be let in beside the first. So the run
checks its :class:`RunLease` before every unit of work: the check keeps a PostgreSQL session
from ever being idle, and a lock found gone ends the run there with
:class:`BatchLockLostError` (what it did so far is committed; a run again does the rest).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol


class BatchBusyError(Exception):
    """Another run of the job holds its lock; nothing was run."""

    def __init__(self, code: str, holder: str) -> None:
        super().__init__(f"batch {code} is already running ({holder}); nothing was run: wait "
                         "for it to end, or stop it")
        self.code = code
        self.holder = holder


class BatchLockLostError(Exception):
    """The run's lock went while it ran (``reason``), after ``done`` items: it stopped
    before its next unit of work, so that no second run works beside it."""

    def __init__(self, code: str, reason: str, done: int | None = None) -> None:
        after = "" if done is None else f" after {done} items"
        super().__init__(f"batch {code} lost its run lock ({reason}) and stopped{after}, so "
                         "that no second run works beside it: what it did is committed; run "
                         "it again for the rest")
        self.code = code
        self.reason = reason
        self.done = done

    def after(self, done: int) -> BatchLockLostError:
        """The same loss, saying how many items the run had gone through."""
        return BatchLockLostError(self.code, self.reason, done)


class RunLease(Protocol):
    """A held lock, as the run holding it sees it."""

    def check(self) -> None:
        """Raise :class:`BatchLockLostError` if the lock is no longer this run's. Cheap
        (one round trip at most): called before every unit of work."""
        ...


class RunLocks(Protocol):
    """The locks that keep a job to one run at a time over one database."""

    def hold(self, code: str) -> AbstractContextManager[RunLease]:
        """Hold job ``code``'s lock for the block, or raise :class:`BatchBusyError` naming
        the holder at once (never wait: a run that waited would start its work late, after
        the other had done it)."""
        ...


def this_process() -> str:
    """This process as a refusal names a lock's holder."""
    return f"pid {os.getpid()} on {socket.gethostname()}"


def utc_text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def holder_description() -> str:
    """Who holds a lock, as the refusal names it: process, host and since when (UTC)."""
    return f"{this_process()} since {utc_text(dt.datetime.now(dt.UTC))}"


class KeptLease:
    """The lease of a lock nothing but its holder can end (one in this process)."""

    def check(self) -> None:
        return None


class LocalRunLocks:
    """Locks of a store that lives in this process only."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._holders: dict[str, str] = {}

    @contextmanager
    def hold(self, code: str) -> Iterator[RunLease]:
        with self._guard:
            holder = self._holders.get(code)
            if holder is not None:
                raise BatchBusyError(code, holder)
            self._holders[code] = f"{holder_description()}, thread {threading.get_ident()}"
        try:
            yield KeptLease()
        finally:
            with self._guard:
                del self._holders[code]
