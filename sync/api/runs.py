"""Long operations started over HTTP (batch runs, reconciliations, resends of every request
in ERROR), each in a thread of its own, kept by id (``BR-1``, ``RC-1``, ``RS-1``, ...).

A run of a million pending SAs, or a replay of a large sync topic, takes minutes; a proxy or a
client gives up long before. So such a run is a resource: with ``Prefer: respond-async`` the
request answers ``202 Accepted`` once the work has checked its input and begun (a refusal is
still answered as before), with ``Location`` naming the run; ``GET`` on it shows the progress
and, at the end, the result. Without the preference the answer waits for the result, as it
always did. A run can be asked to stop, and the server's shutdown asks every one: a batch run
or a resend ends after the unit of work under way, the same as SIGTERM on the command line; a
reconciliation ends during its replay, without a report.

Runs are this server's: kept in memory (the newest finished ones, and every run still going),
one run of a kind (a batch code, reconciliation) at a time. A run started elsewhere (the CLI,
another server) is not known here.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Header, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from sync.api.problems import ProblemError
from sync.batches import BatchBusyError, BatchLockLostError, BatchUsageError
from sync.ccb.errors import CcbError
from sync.storage.ccb import CcbStoreError

Result = TypeVar("Result")
log = logging.getLogger("sync.api")
# Prefer: respond-async: how long to wait for the work to check its input and begin, and the
# longest wait=N heeded (a client wanting more should follow the run instead).
BEGIN_WAIT_S = 30.0
MAX_WAIT_S = 600.0


class RunStoppedError(Exception):
    """Raised by work that has no result to give when it is asked to stop (a reconciliation
    stopped during its replay): the run ends ``STOPPED``, this saying how far it had got."""


# Errors that say what is wrong in the domain's words (no traceback needed in the log).
_EXPECTED = (CcbError, CcbStoreError, BatchUsageError, BatchBusyError, BatchLockLostError,
             ProblemError, RunStoppedError)


class RunState(enum.StrEnum):
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"  # went through its work (a batch's item errors are in its report)
    STOPPED = "STOPPED"  # asked to stop: between two units of work, or a replay without report
    FAILED = "FAILED"  # ended by an error that is not an item's (the database away, ...)


class RunConflictError(Exception):
    """A run of the kind is still going on this server: ``going``."""

    def __init__(self, going: Run[Any]) -> None:
        super().__init__(f"{going.id} of {going.kind}, started "
                         f"{going.started_at.isoformat()}, is still running on this server")
        self.going = going


@dataclass
class Run(Generic[Result]):
    """One run: its progress while it goes, its result or error at the end."""

    id: str
    kind: str  # the batch code; "reconciliation"
    started_at: dt.datetime
    state: RunState = RunState.RUNNING
    finished_at: dt.datetime | None = None
    total: int | None = None  # items (records) to go through, once known (None: not said)
    done: int = 0
    result: Result | None = None
    error: Exception | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    # Set when the job has checked its input and begun, or has ended (whichever is first).
    began: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)
    # Held while the run's end (result, error, finish time, state) is set, and while a
    # snapshot is taken, so no view sees half of it.
    _ending: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def snapshot(self) -> Run[Result]:
        """The run as it stands now, a copy that its thread does not change: a view (a page,
        an answer) reads every field from one snapshot, or it could say ``RUNNING`` with a
        result, or ``FINISHED`` without one, when the run ends while it is read. The copy
        shares the live run's events, so a stop asked on it is the run's."""
        with self._ending:
            return replace(self)

    def end(self, result: Result | None, error: Exception | None, state: RunState,
            finished_at: dt.datetime) -> None:
        """Set the run's end, all of it at once for a snapshot."""
        with self._ending:
            self.result, self.error = result, error
            self.finished_at = finished_at
            self.state = state

    @property
    def stop_requested(self) -> bool:
        return self.stop.is_set()

    def error_text(self) -> str | None:
        """What ended a failed run, in the domain's words; an unexpected error is only named
        (its traceback is in the server log)."""
        if self.error is None:
            return None
        if isinstance(self.error, ProblemError):
            return self.error.detail
        if isinstance(self.error, _EXPECTED):
            return str(self.error)
        return f"{type(self.error).__name__}: the run met an unexpected error; it is logged"

    # The work's progress (read by other threads: an int assignment is atomic in Python, and
    # a slightly old count is fine).

    def begin(self, total: int | None) -> None:
        """The work has checked its input and begun, with ``total`` items to go through."""
        self.total = total
        self.began.set()

    def advance(self, count: int) -> None:
        self.done += count

    def ask_to_stop(self, what: str) -> None:
        """Have the work end after its unit under way; a 409 if it has ended (``what`` names
        the run in that answer)."""
        if self.ended.is_set():
            raise ProblemError("conflict", f"{what} {self.id} has already ended ({self.state})")
        self.stop.set()


class RunProgress:
    """A batch job's :class:`~sync.batches.Progress`, reported on its run."""

    def __init__(self, run: Run[Any]) -> None:
        self._run = run

    def start(self, description: str, total: int | None) -> None:
        self._run.begin(total)

    def advance(self, count: int) -> None:
        self._run.advance(count)


class Runs(Generic[Result]):
    """The runs of one kind of work on this server: ids ``{prefix}-1``, ``{prefix}-2``, ...;
    the newest ``keep`` that ended are kept, with every run still going."""

    def __init__(self, prefix: str, keep: int,
                 stopped: Callable[[Result], bool] = lambda _result: False) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, Run[Result]] = {}
        self._prefix = prefix
        self._keep = keep
        self._stopped = stopped  # whether a result says its work was stopped before the end
        self._next = 1

    def start(self, kind: str, now: dt.datetime, work: Callable[[Run[Result]], Result],
              finished: Callable[[], dt.datetime]) -> Run[Result]:
        """Start ``work`` for a new run of ``kind`` in its own thread; :class:`RunConflictError`
        naming the run going when a run of ``kind`` is still going."""
        with self._lock:
            going = next((run for run in self._runs.values()
                          if run.kind == kind and run.state is RunState.RUNNING), None)
            if going is not None:
                raise RunConflictError(going)
            run: Run[Result] = Run(id=f"{self._prefix}-{self._next}", kind=kind,
                                   started_at=now)
            self._next += 1
            self._runs[run.id] = run
            self._forget_old()
        thread = threading.Thread(target=self._run, args=(run, work, finished),
                                  name=f"{run.id} {kind}", daemon=True)
        thread.start()
        return run

    def _run(self, run: Run[Result], work: Callable[[Run[Result]], Result],
             finished: Callable[[], dt.datetime]) -> None:
        result: Result | None = None
        error: Exception | None = None
        try:
            result = work(run)
        except Exception as failure:
            if not isinstance(failure, _EXPECTED):
                log.error("%s (%s) failed", run.id, run.kind, exc_info=failure)
            error = failure
        finally:
            # Whatever ended it, the run ends, its result and state set together: nobody
            # waits for it for ever, nobody sees a result on a run still RUNNING.
            state = (RunState.STOPPED if isinstance(error, RunStoppedError)
                     else RunState.FAILED if result is None
                     else RunState.STOPPED if self._stopped(result) else RunState.FINISHED)
            with self._lock:
                run.end(result, error, state, finished())
            run.began.set()
            run.ended.set()
            log.info("%s (%s) %s after %d of %s", run.id, run.kind, state.value, run.done,
                     "?" if run.total is None else run.total)

    def _forget_old(self) -> None:
        ended = [run for run in self._runs.values() if run.state is not RunState.RUNNING]
        for run in ended[:max(len(ended) - self._keep, 0)]:
            del self._runs[run.id]

    def get(self, run_id: str, kind: str | None = None) -> Run[Result] | None:
        """The run ``run_id`` (of ``kind``, if given)."""
        with self._lock:
            run = self._runs.get(run_id)
            return run if run is not None and kind in (None, run.kind) else None

    def newest_first(self, kind: str | None = None) -> list[Run[Result]]:
        """Snapshots of the runs (of ``kind``, if given), newest first: for a list to show."""
        with self._lock:
            return [run.snapshot() for run in reversed(self._runs.values())
                    if kind in (None, run.kind)]

    def going(self) -> list[Run[Result]]:
        with self._lock:
            return [run for run in self._runs.values() if run.state is RunState.RUNNING]


def stop_all(registries: Iterable[Runs[Any]], timeout_s: float) -> list[Run[Any]]:
    """Ask every run still going in ``registries`` to stop and wait for them, up to
    ``timeout_s`` in all (the server's shutdown); the runs that had not ended by then."""
    going = [run for runs in registries for run in runs.going()]
    for run in going:
        run.stop.set()
    deadline = time.monotonic() + timeout_s
    for run in going:
        run.ended.wait(max(deadline - time.monotonic(), 0.0))
    return [run for run in going if not run.ended.is_set()]


class RunOut(BaseModel):
    """A run as the API shows it: its progress while it goes, what ended it if it failed."""

    id: str
    state: Literal["RUNNING", "FINISHED", "STOPPED", "FAILED"] = Field(
        description="FINISHED: went through its work (a batch's item errors are in its "
                    "report); STOPPED: asked to stop, ended between two units of work (a "
                    "reconciliation: during its replay, without a report); "
                    "FAILED: ended by an error that is not an item's")
    started_at: dt.datetime
    finished_at: dt.datetime | None
    total: int | None = Field(description="what it has to go through (items of a batch, "
                                          "records of the topic, requests in ERROR); null "
                                          "when not known")
    done: int = Field(description="how many of them it has gone through so far")
    error: str | None = Field(description="what ended it (FAILED; a STOPPED run that has no "
                                          "result, how far it had got)")

    @classmethod
    def progress_of(cls, run: Run[Any]) -> dict[str, Any]:
        """The fields every run has, from ``run`` (a snapshot: see :meth:`Run.snapshot`)."""
        return {"id": run.id, "state": run.state.value, "started_at": run.started_at,
                "finished_at": run.finished_at, "total": run.total, "done": run.done,
                "error": run.error_text()}


def runs_of(request: Request, registry: str) -> Runs[Any]:
    """The app's run registry ``registry`` (``batch_runs``, ``reconciliations``, ...)."""
    runs: Runs[Any] = getattr(request.app.state, registry)
    return runs


PreferHeader = Annotated[str | None, Header(
    description="respond-async: answer 202 once the run has begun, Location naming it; "
                "wait=N: answer the result all the same if the run ends within N seconds")]


@dataclass(frozen=True)
class Preferences:
    """The request's ``Prefer`` header (RFC 7240) as far as a long run heeds it."""

    respond_async: bool = False
    wait_s: float = 0.0


def preferences(header: str | None) -> Preferences:
    """``respond-async`` and ``wait=N`` (seconds) of a ``Prefer`` header; what is not
    understood is ignored, as RFC 7240 asks."""
    respond_async, wait_s = False, 0.0
    for preference in (header or "").split(","):
        token, _, value = preference.split(";")[0].strip().partition("=")
        name = token.strip().lower()
        seconds = value.strip().strip('"')
        if name == "respond-async":
            respond_async = True
        elif name == "wait" and seconds.isdigit():
            wait_s = min(float(seconds), MAX_WAIT_S)
    return Preferences(respond_async, wait_s)


def started(runs: Runs[Result], kind: str, work: Callable[[Run[Result]], Result],
            clock: Callable[[], dt.datetime], path: Callable[[Run[Any]], str],
            busy: str) -> Run[Result]:
    """A new run of ``kind`` started; a 409 naming the run of ``kind`` still going (at its
    ``path``) otherwise, ``busy`` saying what to do about it (``{path}`` filled in)."""
    try:
        return runs.start(kind, clock(), work, clock)
    except RunConflictError as error:
        raise ProblemError("conflict", f"{error}: {busy.format(path=path(error.going))}"
                           ) from None


def answered(run: Run[Result], prefer: str | None, response: Response, path: str,
             going: Callable[[], BaseModel], result: Callable[[Result], Any],
             header: str = "Content-Location") -> Any:
    """The answer to the request that started ``run``, waiting as the ``Prefer`` header
    asks: ``result`` of its result once it has ended (its error raised, to be answered as the
    request's own; ``header`` names the run), else ``202 Accepted`` with ``going()`` and
    ``Location``. A refusal of the input comes before the work begins, so under
    ``respond-async`` it is still answered as the request's error."""
    wanted = preferences(prefer)
    if wanted.respond_async:
        run.began.wait(BEGIN_WAIT_S)
        run.ended.wait(wanted.wait_s)
    else:
        run.ended.wait()
    if not run.ended.is_set():
        return JSONResponse(going().model_dump(mode="json"),
                            status_code=status.HTTP_202_ACCEPTED,
                            headers={"Location": path, "Preference-Applied": "respond-async"})
    if run.error is not None:
        raise run.error
    assert run.result is not None
    response.headers[header] = path
    return result(run.result)
