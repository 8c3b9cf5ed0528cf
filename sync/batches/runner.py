"""Running a batch step over a selection in chunked units of work.

Each chunk of item ids (a few hundred) is one unit of work, so a run costs one transaction per
chunk rather than per item, and a crash loses at most the chunk in flight. When a chunk's unit
fails (one bad SA, a concurrent update by a CSR), the chunk is retried item by item, each in its
own unit: one bad item is reported with its reason and the others are applied. A database that
is unreachable or locked beyond its timeout is not an item's fault: the run stops with it.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.exc import InterfaceError, OperationalError

from sync.batches.ports import NoProgress, Progress, UnitStore
from sync.batches.report import BatchReport
from sync.batches.run_locks import BatchLockLostError, KeptLease, RunLease
from sync.ccb.batches.common import BatchStep, ChunkDecision, Shortcut, decide_chunk
from sync.ccb.changes import Changes
from sync.ccb.errors import CcbError
from sync.ccb.ports import CcbUnitOfWork, CcbView, IdSource
from sync.clock import Clock
from sync.config.admin import AdminConfig

# Errors of the database itself, not of an item: retrying item by item would only repeat them.
FATAL_ERRORS: tuple[type[Exception], ...] = (OperationalError, InterfaceError)

Prefetch = Callable[[CcbView, Sequence[str]], CcbView]


class FastPath(Protocol):
    """A set-based path for a step's common case: which items of a chunk it decides (each
    with what records its outcome in the chunk's work, in its place in the order), and the
    row updates it writes in the chunk's unit of work."""

    def shortcuts(self, view: CcbView, item_ids: Sequence[str]) -> Mapping[str, Shortcut]: ...

    def write(self, view: CcbView, changes: Changes) -> None: ...


def describe(error: Exception) -> str:
    """An error as a report line: domain errors already name the entity and field."""
    if isinstance(error, CcbError):
        return str(error)
    return f"{type(error).__name__}: {error}"


@dataclass
class ChunkedRunner:
    store: UnitStore
    admin: AdminConfig
    clock: Clock
    business_date: dt.date
    user: str
    progress: Progress = NoProgress()  # noqa: RUF009 - stateless default
    # Checked between chunks only: a chunk is one unit of work, so a stop never leaves one
    # half-applied.
    stop: threading.Event | None = None
    # The run's lock, checked before every chunk too: a lock gone ends the run there.
    lease: RunLease = field(default_factory=KeptLease)

    def run(self, report: BatchReport, chunks: Iterable[Sequence[str]], step: BatchStep,
            entity: str, prefetch: Prefetch | None = None,
            fast_path: FastPath | None = None) -> None:
        done = 0
        for chunk in chunks:
            if not chunk:
                continue
            if self.stop is not None and self.stop.is_set():
                report.stopped = True
                return
            try:
                self.lease.check()
            except BatchLockLostError as lost:
                raise lost.after(done) from lost.__cause__
            self._run_chunk(report, list(chunk), step, entity, prefetch, fast_path)
            self.progress.advance(len(chunk))
            done += len(chunk)

    def _run_chunk(self, report: BatchReport, chunk: list[str], step: BatchStep, entity: str,
                   prefetch: Prefetch | None, fast_path: FastPath | None = None) -> None:
        try:
            self._apply(report, chunk, step, prefetch, fast_path)
            return
        except FATAL_ERRORS:
            raise
        except Exception as error:
            if len(chunk) == 1:
                report.fail(entity, chunk[0], describe(error))
                return
        for item_id in chunk:
            try:
                self._apply(report, [item_id], step, prefetch, fast_path)
            except FATAL_ERRORS:
                raise
            except Exception as error:
                report.fail(entity, item_id, describe(error))

    def _apply(self, report: BatchReport, item_ids: list[str], step: BatchStep,
               prefetch: Prefetch | None, fast_path: FastPath | None = None) -> None:
        decided: list[ChunkDecision] = []
        self.store.execute(self._unit(item_ids, step, prefetch, decided, fast_path))
        decision = decided[-1]
        report.count(decision.outcomes, _todos_created(decision.changes))

    def _unit(self, item_ids: list[str], step: BatchStep, prefetch: Prefetch | None,
              decided: list[ChunkDecision], fast_path: FastPath | None = None) -> CcbUnitOfWork:
        now = self.clock.now()

        def unit(view: CcbView, ids: IdSource) -> Changes:
            shortcuts = fast_path.shortcuts(view, item_ids) if fast_path is not None else {}
            general = [item_id for item_id in item_ids if item_id not in shortcuts]
            source = prefetch(view, general) if prefetch is not None and general else view
            decision = decide_chunk(source, ids, self.admin, self.business_date, now,
                                    self.user, item_ids, step, shortcuts)
            if fast_path is not None:
                fast_path.write(view, decision.changes)
            decided.append(decision)
            return decision.changes

        return unit


def _todos_created(changes: Changes) -> int:
    return sum(1 for entry in changes.todos.values() if entry.version == 1)
