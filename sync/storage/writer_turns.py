"""Writers of one SQLite database take its write lock in turns.

SQLite has one writer at a time. A writer that finds the lock taken waits in SQLite's busy
handler, which sleeps 1, 2, 5, 10, ... and then 100 ms between attempts and never queues: it
gets the lock only if an attempt happens to land while the lock is free. A writer that commits
and begins again at once (a batch run working through its chunks, a driver issuing changes on a
fixed tick) leaves windows that such attempts rarely hit, and a periodic writer can phase-lock
with the 100 ms sleeps so that they never do. Measured: a writer holding the lock 40 of every
50 ms kept another out for the whole run (5.9 s); with a gap of 30 ms in 50 the other waited at
most 37 ms. In the pipeline this starves the relay's and the acknowledgement consumer's short
transactions while a batch runs, and sync requests wait seconds to be published.

So every write transaction of the stores on a SQLite file first takes its turn here, with two
advisory locks (``flock``) on files beside the database:

1. the *turnstile*, held only while waiting for the write lock;
2. the *writer* lock, held for the whole transaction.

A writer that has just finished and wants to write again must pass the turnstile, which a
waiting writer holds while it waits for the writer lock: that one gets the lock next, then
lets the turnstile go. Writers therefore alternate instead of one keeping the lock. An
operating system lock released by a process that dies frees the turn at once.

Waiting: ``flock`` has no timeout, so a writer that finds a lock taken hands the wait to a
helper thread blocked in ``flock`` on a duplicate of its descriptor (the same open file, so
the same lock) and waits for that thread until its deadline. The kernel wakes the helper the
moment the lock is let go. Polling every millisecond, as before, woke each waiting writer a
thousand times a second, which cost about 4 % of a core per writer waiting, and handed the
turn over up to a millisecond late. A wait that times out leaves its helper blocked until the
lock is let go; the helper then lets it go at once and closes its descriptor.

The turns only order writers; SQLite's own lock still guarantees one writer, and it still
applies to writers that do not take turns (another program, an older version). A writer that
cannot get its turn within the busy timeout goes on without it and meets SQLite's lock and busy
timeout as before: nothing can wait for ever here. A database in memory has no turns (one
connection).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path


class WriterTurns:
    """Turns for the writers of the SQLite database at ``database``."""

    def __init__(self, database: Path, timeout_s: float) -> None:
        self.turnstile = Path(f"{database}-turnstile")
        self.writer = Path(f"{database}-writer")
        self.timeout_s = timeout_s

    @contextlib.contextmanager
    def turn(self) -> Iterator[bool]:
        """Hold the writer lock for the block; yields whether the turn was had (False: the
        timeout passed and the block runs without it)."""
        deadline = time.monotonic() + self.timeout_s
        with _opened(self.turnstile) as turnstile, _opened(self.writer) as writer:
            had = False
            if _take(turnstile, deadline):
                try:
                    had = _take(writer, deadline)
                finally:
                    fcntl.flock(turnstile, fcntl.LOCK_UN)
            try:
                yield had
            finally:
                if had:
                    fcntl.flock(writer, fcntl.LOCK_UN)


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[int]:
    # A descriptor of its own for every turn: flock locks belong to the open file, so two
    # threads of one process take turns like two processes do.
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        yield descriptor
    finally:
        os.close(descriptor)


def _take(descriptor: int, deadline: float) -> bool:
    """Lock ``descriptor``'s file by ``deadline``; whether it was locked."""
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        pass
    wait = _Wait(os.dup(descriptor))
    threading.Thread(target=wait.block, name="c2m-writer-turn", daemon=True).start()
    return wait.outcome(deadline)


class _Wait:
    """A blocking ``flock`` in a helper thread, on its own duplicate of the descriptor, and
    the waiting writer's side of it. Whether the lock was had is decided once, under
    ``_deciding``: either the helper took it before the writer gave up, or the writer gave up
    first and the helper lets it go when it gets it."""

    def __init__(self, descriptor: int) -> None:
        self._descriptor = descriptor
        self._deciding = threading.Lock()
        self._taken = threading.Event()
        self._abandoned = False

    def block(self) -> None:
        try:
            fcntl.flock(self._descriptor, fcntl.LOCK_EX)
            with self._deciding:
                if self._abandoned:
                    fcntl.flock(self._descriptor, fcntl.LOCK_UN)
                else:
                    self._taken.set()
        finally:
            # The lock belongs to the open file, which the writer's own descriptor keeps
            # open while it holds the lock.
            os.close(self._descriptor)

    def outcome(self, deadline: float) -> bool:
        self._taken.wait(max(0.0, deadline - time.monotonic()))
        with self._deciding:
            if self._taken.is_set():
                return True
            self._abandoned = True
            return False


def turns_for(database: str | None, timeout_s: float) -> WriterTurns | None:
    """The turns of a SQLite database file (None for a database in memory)."""
    if database in (None, "", ":memory:") or str(database).startswith("file::memory:"):
        return None
    return WriterTurns(Path(database).resolve(), timeout_s)
