"""Batch runs and reconciliation runs (``c2m-sync batch list|run``, ``c2m-sync reconcile``).

A batch run is synchronous: the answer is its report (counts, and one line per item it could
not process; the other items are applied, as on the command line). A reconciliation replays
the configured bus's sync topic, compares it with CCB and MDM, optionally queues repairs, and
is kept in memory (the newest :data:`KEPT_RECONCILIATIONS`) so it can be fetched again by id.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
import threading
from collections import deque
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body, Request, status
from pydantic import AfterValidator, BaseModel, Field

from sync.api.deps import RuntimeDep
from sync.api.models import Body as RequestBody
from sync.api.models import BusinessDate, PathId
from sync.api.problems import ProblemError, responses
from sync.api.runtime import Runtime
from sync.api.security import Read, Write
from sync.batches import JobContext, load_jobs
from sync.ccb.errors import NotFound
from sync.reconcile.replay import ReplayError
from sync.reconcile.report import ReconcileReport
from sync.reconcile.run import reconcile, repair
from sync.storage.ccb_batch_queries import SqlBatchQueries
from sync.transport.bus import BusError, bus_of

router = APIRouter(prefix="/api", responses=responses(401, 404, 409, 422))
KEPT_RECONCILIATIONS = 20
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
    seconds: float
    details: list[str]


@router.get("/batches", tags=["batches"], dependencies=[Read], summary="The batch jobs")
def batch_list() -> list[BatchJobOut]:
    return [BatchJobOut(code=job.code, description=job.description)
            for job in load_jobs().all()]


@router.post("/batches/{code}/runs", tags=["batches"], dependencies=[Write],
             summary="Run a batch job now and answer its report")
def run_batch(code: PathId, runtime: RuntimeDep,
              body: Annotated[BatchRunIn | None, Body()] = None) -> BatchReportOut:
    registry = load_jobs()
    if code not in {job.code for job in registry.all()}:
        raise NotFound("batch", code, "code")
    body = body or BatchRunIn()
    with tempfile.TemporaryDirectory(prefix="c2m-sync-upload-") as folder:
        upload_file = None
        if body.upload is not None:
            upload_file = Path(folder) / f"upload.{body.upload.format}"
            upload_file.write_text(body.upload.content, "utf-8")
        store = runtime.ccb
        context = JobContext(admin=runtime.admin, clock=runtime.clock, store=store,
                             queries=SqlBatchQueries(store.engine), settings=runtime.settings,
                             file=upload_file, chunk_size=body.chunk_size,
                             business_date=body.business_date)
        report = registry.run(code, context)
    return BatchReportOut.model_validate(report.to_dict())


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
