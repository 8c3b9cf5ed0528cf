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
turn over up to a millisecond late. A wait that times out leaves its helper blocked; the next
writer of the process that has to wait for the same file waits on that helper instead of
starting another, so a lock kept by a stuck process costs one helper per writer waiting at
once, not one per attempt. A helper that gets the lock with no writer waiting on it lets it go
at once and closes its descriptor.

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
from dataclasses import dataclass
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
            held: _Held | None = None
            passed = _take(self.turnstile, turnstile, deadline)
            if passed is not None:
                try:
                    held = _take(self.writer, writer, deadline)
                finally:
                    passed.let_go()
            try:
                yield held is not None
            finally:
                if held is not None:
                    held.let_go()


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[int]:
    # A descriptor of its own for every turn: flock locks belong to the open file, so two
    # threads of one process take turns like two processes do.
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        yield descriptor
    finally:
        os.close(descriptor)


@dataclass(frozen=True)
class _Held:
    """A lock had: on the writer's own descriptor, or on the descriptor of the helper whose
    wait got it (then closed once the lock is let go)."""

    descriptor: int
    own: bool

    def let_go(self) -> None:
        fcntl.flock(self.descriptor, fcntl.LOCK_UN)
        if not self.own:
            os.close(self.descriptor)


# Helpers whose writer gave up waiting and which are still blocked in ``flock``, by lock file.
# The next writer that has to wait for that file takes one over instead of starting its own:
# otherwise, while a stuck process kept the lock, every attempt to write would leave one more
# thread and descriptor behind, until the process ran out of descriptors. So a process never
# has more helpers for a file than it has writers waiting at once.
_given_up: dict[Path, list[_Wait]] = {}
_given_up_lock = threading.Lock()


def _take(path: Path, descriptor: int, deadline: float) -> _Held | None:
    """Lock the file ``path`` (open as ``descriptor``) by ``deadline``; the lock had, or None."""
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return _Held(descriptor, own=True)
    except BlockingIOError:
        pass
    while True:
        with _given_up_lock:
            waiting = _given_up.get(path)
            wait = waiting.pop() if waiting else None
        if wait is None:
            wait = _Wait(path, os.dup(descriptor))
            threading.Thread(target=wait.block, name="c2m-writer-turn", daemon=True).start()
            break
        if wait.take_over():
            break
        # That helper got the lock meanwhile and let it go: try the next one, or a new one.
    return wait.outcome(deadline)


class _Wait:
    """A blocking ``flock`` in a helper thread, on its own duplicate of a descriptor, and the
    side of the writer waiting on it. Whether a writer has the lock is decided under
    ``_deciding``: the helper either takes the lock while a writer waits on it (the writer then
    holds it on the helper's descriptor) or, when no writer waits on it any more, lets the lock
    go at once and ends."""

    def __init__(self, path: Path, descriptor: int) -> None:
        self._path = path
        self._descriptor = descriptor
        self._deciding = threading.Lock()
        self._taken = threading.Event()
        self._waited_on = True
        self._ended = False

    def block(self) -> None:
        fcntl.flock(self._descriptor, fcntl.LOCK_EX)
        with self._deciding:
            if self._waited_on:
                self._taken.set()  # the writer holds it now, on this descriptor
                return
            self._ended = True
            with _given_up_lock:
                waiting = _given_up.get(self._path, [])
                if self in waiting:
                    waiting.remove(self)
                if not waiting:
                    _given_up.pop(self._path, None)
        fcntl.flock(self._descriptor, fcntl.LOCK_UN)
        os.close(self._descriptor)

    def take_over(self) -> bool:
        """Wait on this given-up helper; False if it has ended."""
        with self._deciding:
            if self._ended:
                return False
            self._waited_on = True
            return True

    def outcome(self, deadline: float) -> _Held | None:
        self._taken.wait(max(0.0, deadline - time.monotonic()))
        with self._deciding:
            if self._taken.is_set():
                return _Held(self._descriptor, own=False)
            self._waited_on = False
            with _given_up_lock:
                _given_up.setdefault(self._path, []).append(self)
            return None


def database_file(database: str | None) -> Path | None:
    """The file of the SQLite database ``database`` (a URL's database part), beside which its
    lock files go; None for a database in memory."""
    if database in (None, "", ":memory:") or str(database).startswith("file::memory:"):
        return None
    return Path(str(database)).resolve()


def turns_for(database: str | None, timeout_s: float) -> WriterTurns | None:
    """The turns of a SQLite database file (None for a database in memory)."""
    file = database_file(database)
    return None if file is None else WriterTurns(file, timeout_s)
