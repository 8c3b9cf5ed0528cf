"""A SQLite database that crashes just after confirming one batch and comes back without it, as
PostgreSQL with ``synchronous_commit = off`` does after a crash (or a failover to a standby that
was behind), and that refuses every call for a few calls meanwhile. The stores that use it
wrap a real store and pass every call through it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy.exc import OperationalError

T = TypeVar("T")


class CrashingDatabase:
    def __init__(self, path: Path, dispose: Callable[[], None], *, crash_after_batch: int,
                 down_for_calls: int) -> None:
        self._path = path
        self._dispose = dispose
        self._crash_after = crash_after_batch
        self._outage_calls = down_for_calls
        self._down_for = 0
        self.batches = 0
        self.refused = 0

    def answer(self) -> None:
        """Refuse the call while the database is down."""
        if self._down_for > 0:
            self._down_for -= 1
            self.refused += 1
            raise OperationalError("SELECT 1", None, ConnectionRefusedError("restarting"))

    def batch(self, apply: Callable[[], T]) -> T:
        """Apply one batch; the one the crash comes after is confirmed, then lost."""
        self.answer()
        self.batches += 1
        if self.batches != self._crash_after:
            return apply()
        self._dispose()  # closing the last connection folds the WAL into the file
        before = self._path.read_bytes()
        result = apply()  # confirmed...
        self._dispose()
        self._path.write_bytes(before)  # ...and gone after the crash
        self._down_for = self._outage_calls
        return result

    @property
    def crashed(self) -> bool:
        return self.batches >= self._crash_after
