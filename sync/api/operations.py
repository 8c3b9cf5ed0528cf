"""Batch runs and reconciliation runs (``c2m-sync batch list|run``, ``c2m-sync reconcile``).

A batch run's answer is its report (counts, and one line per item it could not process; the
other items are applied, as on the command line), or with ``Prefer: respond-async`` the run
itself, to follow by id (:mod:`sync.api.batch_runs`). A reconciliation replays
the configured bus's sync topic, compares it with CCB and MDM, optionally queues repairs, and
is kept in memory (the newest :data:`KEPT_RECONCILIATIONS`) so it can be fetched again by id.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body, Header, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, Field

from sync.api.batch_runs import BatchRun, BatchRuns, RunConflictError, RunProgress
from sync.api.deps import RuntimeDep
from sync.api.models import Body as RequestBody
from sync.api.models import BusinessDate, PathId
from sync.api.problems import ProblemError, responses
from sync.api.runtime import Runtime
from sync.api.security import Read, Write
from sync.batches import BatchReport, JobContext, load_jobs
from sync.ccb.errors import NotFound
from sync.reconcile.replay import ReplayError
from sync.reconcile.report import ReconcileReport
from sync.reconcile.run import reconcile, repair
from sync.storage.ccb_batch_queries import SqlBatchQueries
from sync.transport.bus import BusError, bus_of

router = APIRouter(prefix="/api", responses=responses(401, 404, 409, 422))
KEPT_RECONCILIATIONS = 20
MAX_UPLOAD_CHARS = 5_000_000
# Prefer: respond-async: how long to wait for the job to check its input and begin, and the
# longest wait=N heeded (a client wanting more should follow the run instead).
BEGIN_WAIT_S = 30.0
MAX_WAIT_S = 600.0

# --- batches ----------------------------------------------------------------------------------


class BatchJobOut(BaseModel):
    code: str
    description: str


class Upload(RequestBody):
    """An upload file's content (FACOMPL: rows of fa_id, completed_at, read_value; STOPUPL:
    rows of account_id, stop_date, sa_ids, premise_id, contact_method)."""

    format: Literal["csv", "json"]
    content: Annotated[str, Field(max_length=MAX_UPLOAD_CHARS)]


class BatchRunIn(RequestBody):
    business_date: BusinessDate | None = Field(
        default=None, description="business date of this run (default: the server's)")
    chunk_size: Annotated[int, Field(ge=1, le=5000)] = 500
    upload: Upload | None = None


class ItemErrorOut(BaseModel):
    entity: str
    entity_id: str
    reason: str


class BatchReportOut(BaseModel):
    code: str
    business_date: dt.date
    examined: int
    changed: int
    todos_raised: int
    errors: list[ItemErrorOut] = Field(description="items not processed (nothing changed "
                                                   "for them); the others are applied")
    nothing_to_do: bool
    stopped: bool = Field(description="asked to stop, it ended between two units of work "
                                      "before the end of its selection (run it again for "
                                      "the rest)")
    seconds: float
    details: list[str]


@router.get("/batches", tags=["batches"], dependencies=[Read], summary="The batch jobs")
def batch_list() -> list[BatchJobOut]:
    return [BatchJobOut(code=job.code, description=job.description)
            for job in load_jobs().all()]


class BatchRunOut(BaseModel):
    """A run of this server: its progress while it goes, its report or error at the end."""

    id: str
    code: str
    state: Literal["RUNNING", "FINISHED", "STOPPED", "FAILED"] = Field(
        description="FINISHED: went through its selection (item errors are in the report); "
                    "STOPPED: asked to stop, ended between two units of work; FAILED: ended "
                    "by an error that is not an item's")
    started_at: dt.datetime
    finished_at: dt.datetime | None
    total: int | None = Field(description="items selected (null: the job does not say)")
    done: int = Field(description="items gone through so far")
    stop_requested: bool
    report: BatchReportOut | None = Field(description="once it has ended (FINISHED, STOPPED)")
    error: str | None = Field(description="what ended it (FAILED)")


@dataclass(frozen=True)
class Preferences:
    """The request's ``Prefer`` header (RFC 7240) as far as a batch run heeds it."""

    respond_async: bool = False
    wait_s: float = 0.0


def preferences(header: str | None) -> Preferences:
    """``respond-async`` and ``wait=N`` (seconds) of a ``Prefer`` header; what is not
    understood is ignored, as RFC 7240 asks."""
    respond_async, wait_s = False, 0.0
    for preference in (header or "").split(","):
        token, _, value = preference.split(";")[0].strip().partition("=")
        name = token.strip().lower()
        if name == "respond-async":
            respond_async = True
        elif name == "wait" and value.strip().strip('"').isdigit():
            wait_s = min(float(value.strip().strip('"')), MAX_WAIT_S)
    return Preferences(respond_async, wait_s)


def runs_of(request: Request) -> BatchRuns:
    runs: BatchRuns = request.app.state.batch_runs
    return runs


def _known_code(code: str) -> None:
    if code not in {job.code for job in load_jobs().all()}:
        raise NotFound("batch", code, "code")


def _run_path(run: BatchRun) -> str:
    return f"/api/batches/{run.code}/runs/{run.id}"


def run_out(run: BatchRun) -> BatchRunOut:
    report = run.report
    return BatchRunOut(
        id=run.id, code=run.code, state=run.state.value, started_at=run.started_at,
        finished_at=run.finished_at, total=run.total, done=run.done,
        stop_requested=run.stop_requested,
        report=None if report is None else BatchReportOut.model_validate(report.to_dict()),
        error=run.error_text())


@router.post("/batches/{code}/runs", tags=["batches"], dependencies=[Write],
             summary="Run a batch job: its report, or with Prefer: respond-async the run",
             responses={202: {"model": BatchRunOut,
                              "description": "Accepted (Prefer: respond-async): the run has "
                                             "begun; Location names it"}})
def run_batch(code: PathId, request: Request, response: Response, runtime: RuntimeDep,
              body: Annotated[BatchRunIn | None, Body()] = None,
              prefer: Annotated[str | None, Header(
                  description="respond-async: answer 202 once the run has begun; wait=N: "
                              "answer the report if it ends within N seconds")] = None,
              ) -> Any:
    _known_code(code)
    body = body or BatchRunIn()
    wanted = preferences(prefer)

    def job(run: BatchRun) -> BatchReport:
        with tempfile.TemporaryDirectory(prefix="c2m-sync-upload-") as folder:
            upload_file = None
            if body.upload is not None:
                upload_file = Path(folder) / f"upload.{body.upload.format}"
                upload_file.write_text(body.upload.content, "utf-8")
            store = runtime.ccb
            context = JobContext(admin=runtime.admin, clock=runtime.clock, store=store,
                                 queries=SqlBatchQueries(store.engine),
                                 settings=runtime.settings, file=upload_file,
                                 chunk_size=body.chunk_size, business_date=body.business_date,
                                 progress=RunProgress(run), stop=run.stop)
            return load_jobs().run(code, context)

    try:
        run = runs_of(request).start(code, runtime.clock.now(), job,
                                     lambda: runtime.clock.now())
    except RunConflictError as error:
        raise ProblemError("conflict", str(error)) from None
    if wanted.respond_async:
        # A refusal of the input (FACOMPL without an upload) comes before the job begins,
        # so it is still answered here as a 422.
        run.began.wait(BEGIN_WAIT_S)
        run.ended.wait(wanted.wait_s)
    else:
        run.ended.wait()
    if not run.ended.is_set():
        return JSONResponse(run_out(run).model_dump(mode="json"),
                            status_code=status.HTTP_202_ACCEPTED,
                            headers={"Location": _run_path(run),
                                     "Preference-Applied": "respond-async"})
    if run.error is not None:
        raise run.error
    assert run.report is not None
    response.headers["Content-Location"] = _run_path(run)
    return BatchReportOut.model_validate(run.report.to_dict())


@router.get("/batches/{code}/runs", tags=["batches"], dependencies=[Read],
            summary="The runs of a batch job on this server, newest first")
def batch_runs(code: PathId, request: Request) -> list[BatchRunOut]:
    _known_code(code)
    return [run_out(run) for run in runs_of(request).newest_first(code)]


@router.get("/batches/{code}/runs/{run_id}", tags=["batches"], dependencies=[Read],
            summary="One run: its progress, then its report")
def batch_run(code: PathId, run_id: PathId, request: Request) -> BatchRunOut:
    return run_out(_run(request, code, run_id))


@router.post("/batches/{code}/runs/{run_id}/stop", tags=["batches"], dependencies=[Write],
             status_code=status.HTTP_202_ACCEPTED,
             summary="Ask a run to end after the unit of work under way")
def stop_batch_run(code: PathId, run_id: PathId, request: Request) -> BatchRunOut:
    run = _run(request, code, run_id)
    if run.ended.is_set():
        raise ProblemError("conflict", f"batch run {run.id} has already ended ({run.state})")
    run.stop.set()
    return run_out(run)


def _run(request: Request, code: str, run_id: str) -> BatchRun:
    _known_code(code)
    run = runs_of(request).get(code, run_id)
    if run is None:
        raise NotFound("batch run", run_id, "run_id")
    return run


# --- reconciliations --------------------------------------------------------------------------


def _after_epoch(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and not 1970 <= value.year <= 2999:
        raise ValueError("must be between 1970 and 2999")
    return value


class ReconcileIn(RequestBody):
    since: Annotated[dt.datetime | None, AfterValidator(_after_epoch)] = Field(
        default=None, description="replay from this time (without a zone: the base time "
                                  "zone) instead of the beginning")
    repair: bool = Field(default=False, description="queue a fresh sync request for every "
                                                    "drifted SA CCB can resend")


Value = str | int | float | bool | None


class PartitionRange(BaseModel):
    partition: int
    start: int
    end: int


class UnreadableRecord(BaseModel):
    partition: int
    offset: int
    key: str | None
    reason: str


class ReplayOut(BaseModel):
    topic: str
    partitions: list[PartitionRange]
    records: int
    keys: int
    superseded: int
    tombstones: int
    problems: list[UnreadableRecord]


class CheckedOut(BaseModel):
    ccb: int
    topic: int
    mdm: int


class EntityDriftOut(BaseModel):
    entity_id: str
    kinds: list[str]
    repair: Literal["RESEND", "MANUAL"]
    sync_request: str | None


class DriftOut(BaseModel):
    kind: str
    entity_id: str
    field: str | None
    ccb: Value
    mdm: Value = Field(default=None, description="MDM's value (MDM drifts)")
    topic: Value = Field(default=None, description="the topic's value (topic drifts)")
    message: str


class RequeuedOut(BaseModel):
    entity_id: str
    sync_request_id: str
    version: int


class FailedRepairOut(BaseModel):
    entity_id: str
    reason: str


class RepairOut(BaseModel):
    requeued: list[RequeuedOut]
    manual: list[str]
    failed: list[FailedRepairOut]


class ReconciliationSummary(BaseModel):
    id: str
    started_at: dt.datetime
    finished_at: dt.datetime
    agree: bool
    summary: str


class ReconciliationOut(ReconciliationSummary):
    topic: str
    since: dt.datetime | None
    replay: ReplayOut
    checked: CheckedOut
    counts: dict[str, int]
    entities: list[EntityDriftOut]
    drifts: list[DriftOut]
    repair: RepairOut | None


class ReconciliationHistory:
    """The newest reconciliations of this server, by id (``RC-1``, ``RC-2``, ...)."""

    def __init__(self, keep: int = KEPT_RECONCILIATIONS) -> None:
        self._lock = threading.Lock()
        self._kept: deque[ReconciliationOut] = deque(maxlen=keep)
        self._next = 1

    def add(self, report: ReconcileReport, started_at: dt.datetime,
            finished_at: dt.datetime) -> ReconciliationOut:
        with self._lock:
            document: dict[str, Any] = report.to_dict()
            kept = ReconciliationOut.model_validate({
                **document, "id": f"RC-{self._next}", "started_at": started_at,
                "finished_at": finished_at})
            self._next += 1
            self._kept.append(kept)
            return kept

    def get(self, reconciliation_id: str) -> ReconciliationOut | None:
        with self._lock:
            return next((kept for kept in self._kept if kept.id == reconciliation_id), None)

    def newest_first(self) -> list[ReconciliationOut]:
        with self._lock:
            return list(reversed(self._kept))


def history_of(request: Request) -> ReconciliationHistory:
    history: ReconciliationHistory = request.app.state.reconciliations
    return history


def _reconcile(runtime: Runtime, body: ReconcileIn) -> ReconcileReport:
    """Replay on a bus of this thread's own event loop (the server's loop stays free)."""
    settings, admin = runtime.settings, runtime.admin
    since = body.since
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=ZoneInfo(admin.installation.base_time_zone))

    async def work() -> ReconcileReport:
        bus = bus_of(settings)
        await bus.start()
        try:
            return await reconcile(runtime.outbox, runtime.mdm, bus,
                                   settings.topics.sync_requests, admin, since=since)
        finally:
            await bus.stop()

    try:
        report = asyncio.run(work())
    except (BusError, ReplayError) as error:
        raise ProblemError("unavailable", f"{settings.broker_url}: cannot replay "
                         f"{settings.topics.sync_requests}: {error}") from None
    if body.repair and not report.agree:
        repair(runtime.outbox, report, runtime.clock.now())
    return report


@router.post("/reconciliations", tags=["reconciliation"], dependencies=[Write],
             status_code=status.HTTP_201_CREATED, responses=responses(503),
             summary="Reconcile CCB, the sync topic and MDM now; optionally repair")
def run_reconciliation(request: Request, runtime: RuntimeDep,
                       body: Annotated[ReconcileIn | None, Body()] = None) -> ReconciliationOut:
    started = runtime.clock.now()
    report = _reconcile(runtime, body or ReconcileIn())
    return history_of(request).add(report, started, runtime.clock.now())


@router.get("/reconciliations", tags=["reconciliation"], dependencies=[Read],
            summary="The newest reconciliations of this server, newest first")
def reconciliation_list(request: Request) -> list[ReconciliationSummary]:
    return [ReconciliationSummary.model_validate(kept.model_dump())
            for kept in history_of(request).newest_first()]


@router.get("/reconciliations/{reconciliation_id}", tags=["reconciliation"],
            dependencies=[Read], summary="One reconciliation's report")
def reconciliation(reconciliation_id: PathId, request: Request) -> ReconciliationOut:
    found = history_of(request).get(reconciliation_id)
    if found is None:
        raise NotFound("reconciliation", reconciliation_id, "reconciliation_id")
    return found
