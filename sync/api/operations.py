"""Batch runs and reconciliation runs (``c2m-sync batch list|run``, ``c2m-sync reconcile``).

A batch run's answer is its report (counts, and one line per item it could not process; the
other items are applied, as on the command line), or with ``Prefer: respond-async`` the run
itself, to follow by id (:mod:`sync.api.runs`). A reconciliation replays
the configured bus's sync topic, compares it with CCB and MDM, optionally queues repairs, and
is kept in memory (the newest :data:`KEPT_RECONCILIATIONS`) so it can be fetched again by id.
Batch runs and reconciliations can be asked to stop: a batch run ends after its unit of work
under way, a reconciliation during its replay.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body, Request, Response, status
from pydantic import AfterValidator, BaseModel, Field

from sync.api.deps import RuntimeDep
from sync.api.models import Body as RequestBody
from sync.api.models import BusinessDate, PathId
from sync.api.problems import ProblemError, responses
from sync.api.runs import (
    PreferHeader,
    Run,
    RunOut,
    RunProgress,
    Runs,
    RunStoppedError,
    answered,
    runs_of,
    started,
)
from sync.api.runtime import Runtime
from sync.api.security import Read, Write
from sync.batches import BatchReport, JobContext, load_jobs
from sync.ccb.errors import NotFound
from sync.reconcile.replay import ProgressCallback, ReplayError
from sync.reconcile.report import ReconcileReport
from sync.reconcile.run import reconcile, repair
from sync.storage.ccb_batch_queries import SqlBatchQueries
from sync.storage.run_locks import run_locks_for
from sync.transport.bus import BusError, bus_of

router = APIRouter(prefix="/api", responses=responses(401, 404, 409, 422))
KEPT_RECONCILIATIONS = 20
KEPT_BATCH_RUNS = 50
RECONCILIATION = "reconciliation"
MAX_UPLOAD_CHARS = 5_000_000

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


class BatchRunOut(RunOut):
    """A batch run of this server: its progress while it goes, its report or error at the
    end."""

    code: str
    stop_requested: bool
    report: BatchReportOut | None = Field(description="once it has ended (FINISHED, STOPPED)")


def batch_runs_of(request: Request) -> Runs[BatchReport]:
    return runs_of(request, "batch_runs")


def _known_code(code: str) -> None:
    if code not in {job.code for job in load_jobs().all()}:
        raise NotFound("batch", code, "code")


def _batch_run_path(run: Run[BatchReport]) -> str:
    return f"/api/batches/{run.kind}/runs/{run.id}"


def batch_run_out(live: Run[BatchReport]) -> BatchRunOut:
    run = live.snapshot()
    report = run.result
    return BatchRunOut(
        **RunOut.progress_of(run), code=run.kind, stop_requested=run.stop_requested,
        report=None if report is None else BatchReportOut.model_validate(report.to_dict()))


@router.post("/batches/{code}/runs", tags=["batches"], dependencies=[Write],
             summary="Run a batch job: its report, or with Prefer: respond-async the run",
             responses={202: {"model": BatchRunOut,
                              "description": "Accepted (Prefer: respond-async): the run has "
                                             "begun; Location names it"}})
def run_batch(code: PathId, request: Request, response: Response, runtime: RuntimeDep,
              body: Annotated[BatchRunIn | None, Body()] = None,
              prefer: PreferHeader = None) -> Any:
    _known_code(code)
    body = body or BatchRunIn()
    # Refused before a run is started, with the command line's rule: an upload the job would
    # ignore is an error of the request, not a FAILED run.
    load_jobs().check_file(code, body.upload is not None)

    def job(run: Run[BatchReport]) -> BatchReport:
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
                                 progress=RunProgress(run), stop=run.stop,
                                 locks=run_locks_for(store.engine))
            return load_jobs().run(code, context)

    run = started(batch_runs_of(request), code, job, runtime.clock.now, _batch_run_path,
                  busy="wait for it, or stop it with POST {path}/stop")
    return answered(run, prefer, response, _batch_run_path(run), lambda: batch_run_out(run),
                    lambda report: BatchReportOut.model_validate(report.to_dict()))


@router.get("/batches/{code}/runs", tags=["batches"], dependencies=[Read],
            summary="The runs of a batch job on this server, newest first")
def batch_runs(code: PathId, request: Request) -> list[BatchRunOut]:
    _known_code(code)
    return [batch_run_out(run) for run in batch_runs_of(request).newest_first(code)]


@router.get("/batches/{code}/runs/{run_id}", tags=["batches"], dependencies=[Read],
            summary="One run: its progress, then its report")
def batch_run(code: PathId, run_id: PathId, request: Request) -> BatchRunOut:
    return batch_run_out(_batch_run(request, code, run_id))


@router.post("/batches/{code}/runs/{run_id}/stop", tags=["batches"], dependencies=[Write],
             status_code=status.HTTP_202_ACCEPTED,
             summary="Ask a run to end after the unit of work under way")
def stop_batch_run(code: PathId, run_id: PathId, request: Request) -> BatchRunOut:
    run = _batch_run(request, code, run_id)
    run.ask_to_stop("batch run")
    return batch_run_out(run)


def _batch_run(request: Request, code: str, run_id: str) -> Run[BatchReport]:
    _known_code(code)
    run = batch_runs_of(request).get(run_id, code)
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
    state: Literal["RUNNING", "FINISHED", "STOPPED", "FAILED"]
    started_at: dt.datetime
    finished_at: dt.datetime | None
    agree: bool | None = Field(description="null until it has finished")
    summary: str | None = Field(description="null until it has finished; what failed if so")


class ReconciliationOut(ReconciliationSummary):
    topic: str
    since: dt.datetime | None
    replay: ReplayOut
    checked: CheckedOut
    counts: dict[str, int]
    entities: list[EntityDriftOut]
    drifts: list[DriftOut]
    repair: RepairOut | None


class ReconciliationRunOut(RunOut):
    """A reconciliation without a report: still going (``total``, ``done``: records of the
    topic to replay and replayed so far), stopped during its replay, or failed."""


def reconciliation_runs_of(request: Request) -> Runs[ReconcileReport]:
    return runs_of(request, "reconciliations")


def _reconciliation_path(run: Run[ReconcileReport]) -> str:
    return f"/api/reconciliations/{run.id}"


def reconciliation_out(live: Run[ReconcileReport]
                       ) -> ReconciliationOut | ReconciliationRunOut:
    run = live.snapshot()
    if run.result is None:
        return ReconciliationRunOut(**RunOut.progress_of(run))
    return ReconciliationOut.model_validate({
        **run.result.to_dict(), "id": run.id, "state": run.state.value,
        "started_at": run.started_at, "finished_at": run.finished_at})


def replay_progress(run: Run[ReconcileReport]) -> ProgressCallback:
    """A reconciliation's replay progress, reported on its run; the run's stop ends the
    replay (the callback is called after every fetch, so within 500 ms)."""

    def progress(done: int, total: int) -> None:
        if run.stop.is_set():
            raise RunStoppedError(f"stopped on request during the replay, after {done} of "
                                  f"{total} records; nothing was compared or repaired")
        if not run.began.is_set():
            run.begin(total)  # the topic is there and its bounds read: under way
        run.done = done

    return progress


def replayed_report(runtime: Runtime, progress: ProgressCallback | None = None,
                    since: dt.datetime | None = None) -> ReconcileReport:
    """Replay the sync topic (from ``since``) and compare, on a bus of this thread's own event
    loop, so that the server's loop stays free; the bus's and the replay's errors as raised."""
    settings = runtime.settings

    async def work() -> ReconcileReport:
        bus = bus_of(settings)
        await bus.start()
        try:
            return await reconcile(runtime.outbox, runtime.mdm, bus,
                                   settings.topics.sync_requests, runtime.admin, since=since,
                                   progress=progress)
        finally:
            await bus.stop()

    return asyncio.run(work())


def _reconcile(runtime: Runtime, body: ReconcileIn, run: Run[ReconcileReport]
               ) -> ReconcileReport:
    settings = runtime.settings
    since = body.since
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=ZoneInfo(runtime.admin.installation.base_time_zone))
    try:
        report = replayed_report(runtime, replay_progress(run), since)
    except (BusError, ReplayError) as error:
        raise ProblemError("unavailable", f"{settings.broker_url}: cannot replay "
                         f"{settings.topics.sync_requests}: {error}") from None
    if body.repair and not report.agree:
        repair(runtime.outbox, report, runtime.clock.now())
    return report


@router.post("/reconciliations", tags=["reconciliation"], dependencies=[Write],
             status_code=status.HTTP_201_CREATED,
             responses={**responses(503), 202: {
                 "model": ReconciliationRunOut,
                 "description": "Accepted (Prefer: respond-async): the replay has begun; "
                                "Location names the reconciliation"}},
             summary="Reconcile CCB, the sync topic and MDM now; optionally repair")
def run_reconciliation(request: Request, response: Response, runtime: RuntimeDep,
                       body: Annotated[ReconcileIn | None, Body()] = None,
                       prefer: PreferHeader = None) -> Any:
    wanted = body or ReconcileIn()
    run = started(reconciliation_runs_of(request), RECONCILIATION,
                  lambda run: _reconcile(runtime, wanted, run), runtime.clock.now,
                  _reconciliation_path, busy="follow it at {path}")
    return answered(run, prefer, response, _reconciliation_path(run),
                    lambda: reconciliation_out(run), lambda _report: reconciliation_out(run),
                    header="Location")


@router.post("/reconciliations/{reconciliation_id}/stop", tags=["reconciliation"],
             dependencies=[Write], status_code=status.HTTP_202_ACCEPTED,
             summary="Ask a reconciliation to end: during its replay, within one fetch")
def stop_reconciliation(reconciliation_id: PathId, request: Request
                        ) -> ReconciliationOut | ReconciliationRunOut:
    run = _reconciliation(request, reconciliation_id)
    run.ask_to_stop("reconciliation")
    return reconciliation_out(run)


@router.get("/reconciliations", tags=["reconciliation"], dependencies=[Read],
            summary="The newest reconciliations of this server, newest first")
def reconciliation_list(request: Request) -> list[ReconciliationSummary]:
    return [_summary(run) for run in reconciliation_runs_of(request).newest_first()]


def _summary(live: Run[ReconcileReport]) -> ReconciliationSummary:
    run = live.snapshot()
    report = run.result
    return ReconciliationSummary(
        id=run.id, state=run.state.value, started_at=run.started_at,
        finished_at=run.finished_at,
        agree=None if report is None else report.agree,
        summary=report.summary() if report is not None else run.error_text())


@router.get("/reconciliations/{reconciliation_id}", tags=["reconciliation"],
            dependencies=[Read], summary="One reconciliation: its progress, then its report")
def reconciliation(reconciliation_id: PathId, request: Request
                   ) -> ReconciliationOut | ReconciliationRunOut:
    return reconciliation_out(_reconciliation(request, reconciliation_id))


def _reconciliation(request: Request, reconciliation_id: str) -> Run[ReconcileReport]:
    found = reconciliation_runs_of(request).get(reconciliation_id)
    if found is None:
        raise NotFound("reconciliation", reconciliation_id, "reconciliation_id")
    return found
