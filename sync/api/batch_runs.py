"""Batch runs started over HTTP, each in a thread of its own, kept by id (``BR-1``, ...).

A run of a million pending SAs takes minutes; a proxy or a client gives up long before. So a
run is a resource: ``POST /api/batches/{code}/runs`` with ``Prefer: respond-async`` answers
``202 Accepted`` once the job has checked its input and begun (a refusal such as ``FACOMPL``
without an upload is still a 422), with ``Location`` naming the run; ``GET`` on it shows the
progress and, at the end, the report. Without the preference the answer waits for the report,
as it always did. ``POST .../stop`` ends a run after the unit of work under way, the same as
SIGTERM on ``c2m-sync batch run``; so does the server's shutdown.

Runs are this server's: kept in memory (the newest :data:`KEPT_RUNS` finished ones, and every
run still going), one run of a code at a time. A run started elsewhere (the CLI, another
server) is not known here; every job is idempotent, so two at once are slow, not wrong.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sync.batches import BatchReport, BatchUsageError
from sync.ccb.errors import CcbError
from sync.storage.ccb import CcbStoreError

KEPT_RUNS = 50
log = logging.getLogger("sync.api")


class RunState(enum.StrEnum):
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"  # went through its selection (item errors are in its report)
    STOPPED = "STOPPED"  # asked to stop, ended between two units of work
    FAILED = "FAILED"  # ended by an error that is not an item's (the database away, ...)


class RunConflictError(Exception):
    """A run of the code is still going on this server."""


@dataclass
class BatchRun:
    """One run: its progress while it goes, its report or error at the end."""

    id: str
    code: str
    started_at: dt.datetime
    state: RunState = RunState.RUNNING
    finished_at: dt.datetime | None = None
    total: int | None = None  # items selected, once the job has said (None: it does not)
    done: int = 0
    report: BatchReport | None = None
    error: Exception | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    # Set when the job has checked its input and begun, or has ended (whichever is first).
    began: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)

    @property
    def stop_requested(self) -> bool:
        return self.stop.is_set()

    def error_text(self) -> str | None:
        """What ended a failed run, in the domain's words; an unexpected error is only named
        (its traceback is in the server log)."""
        if self.error is None:
            return None
        if isinstance(self.error, CcbError | CcbStoreError | BatchUsageError):
            return str(self.error)
        return f"{type(self.error).__name__}: the run met an unexpected error; it is logged"


class RunProgress:
    """The job's progress reports, kept on its run (the counts are read by other threads: an
    int assignment is atomic in Python, a slightly old count is fine)."""

    def __init__(self, run: BatchRun) -> None:
        self._run = run

    def start(self, description: str, total: int | None) -> None:
        self._run.total = total
        self._run.began.set()

    def advance(self, count: int) -> None:
        self._run.done += count


class BatchRuns:
    """The runs of this server."""

    def __init__(self, keep: int = KEPT_RUNS) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, BatchRun] = {}
        self._keep = keep
        self._next = 1

    def start(self, code: str, now: dt.datetime,
              job: Callable[[BatchRun], BatchReport],
              finished: Callable[[], dt.datetime]) -> BatchRun:
        """Start ``job`` for a new run of ``code`` in its own thread; :class:`RunConflictError`
        when a run of ``code`` is still going."""
        with self._lock:
            going = next((run for run in self._runs.values()
                          if run.code == code and run.state is RunState.RUNNING), None)
            if going is not None:
                raise RunConflictError(
                    f"batch {code} is already running on this server ({going.id}, started "
                    f"{going.started_at.isoformat()}): wait for it, or stop it with POST "
                    f"/api/batches/{code}/runs/{going.id}/stop")
            run = BatchRun(id=f"BR-{self._next}", code=code, started_at=now)
            self._next += 1
            self._runs[run.id] = run
            self._forget_old()
        thread = threading.Thread(target=self._run, args=(run, job, finished),
                                  name=f"batch {run.id} {code}", daemon=True)
        thread.start()
        return run

    def _run(self, run: BatchRun, job: Callable[[BatchRun], BatchReport],
             finished: Callable[[], dt.datetime]) -> None:
        state = RunState.FAILED
        try:
            run.report = job(run)
            state = RunState.STOPPED if run.report.stopped else RunState.FINISHED
        except Exception as error:
            if not isinstance(error, CcbError | CcbStoreError | BatchUsageError):
                log.error("batch run %s (%s) failed", run.id, run.code, exc_info=error)
            run.error = error
        finally:
            # Whatever ended it, the run ends: nobody waits for it for ever.
            with self._lock:
                run.finished_at = finished()
                run.state = state
            run.began.set()
            run.ended.set()

    def _forget_old(self) -> None:
        ended = [run for run in self._runs.values() if run.state is not RunState.RUNNING]
        for run in ended[:max(len(ended) - self._keep, 0)]:
            del self._runs[run.id]

    def get(self, code: str, run_id: str) -> BatchRun | None:
        with self._lock:
            run = self._runs.get(run_id)
            return run if run is not None and run.code == code else None

    def newest_first(self, code: str) -> list[BatchRun]:
        with self._lock:
            return [run for run in reversed(self._runs.values()) if run.code == code]

    def stop_all(self, timeout_s: float) -> list[BatchRun]:
        """Ask every run still going to stop and wait for them, up to ``timeout_s`` in all
        (the server's shutdown); the runs that had not ended by then."""
        with self._lock:
            going = [run for run in self._runs.values() if run.state is RunState.RUNNING]
        for run in going:
            run.stop.set()
        deadline = time.monotonic() + timeout_s
        for run in going:
            run.ended.wait(max(deadline - time.monotonic(), 0.0))
        return [run for run in going if not run.ended.is_set()]
