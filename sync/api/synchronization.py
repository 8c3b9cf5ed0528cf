"""Sync requests (the outbox) and what MDM holds: list and show requests, resend one in
ERROR or every one (optionally of one error code or entity type), show and list usage
subscriptions (``c2m-sync ccb sync ...``, ``c2m-sync mdm us ...``).

A resend only queues the request again in the CCB store (``SqlOutbox.resend``); the relay of
``c2m-sync worker`` publishes it, as it publishes every other change.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import Field

from sync.api.deps import RuntimeDep
from sync.api.models import PathId
from sync.api.problems import responses
from sync.api.runs import (
    PreferHeader,
    Run,
    RunOut,
    Runs,
    answered,
    runs_of,
    started,
)
from sync.api.runtime import Runtime
from sync.api.security import Read, Write
from sync.api.view_models import (
    ResendErrorsOut,
    ResendFailure,
    SyncRequestDetail,
    SyncRequestOut,
)
from sync.ccb.errors import NotFound
from sync.ccb.sync_requests import SyncRequestState
from sync.mdm.model import UsageSubscription, UsStatus
from sync.storage.outbox import ResendReport

router = APIRouter(prefix="/api", responses=responses(401, 404, 409, 422))
RESEND_ERRORS = "resend-errors"
KEPT_RESENDS = 20

Filter = Annotated[str | None, Query(min_length=1, max_length=100,
                                     pattern=r"^[^\x00-\x1f\x7f]+$")]


@router.get("/sync-requests", tags=["synchronization"], dependencies=[Read],
            summary="Sync requests, newest first")
def sync_request_list(
    runtime: RuntimeDep,
    state: SyncRequestState | None = None,
    entity_type: Annotated[str | None, Query(
        pattern=r"^(SA|PERSON|SA_RELATIONSHIP)$",
        description="SA, PERSON or SA_RELATIONSHIP")] = None,
    entity_id: Filter = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[SyncRequestOut]:
    found = runtime.outbox.find(state=state, entity_type=entity_type, entity_id=entity_id,
                                limit=limit, newest_first=True)
    return [SyncRequestOut.of(request) for request in found]


@router.get("/sync-requests/{request_id}", tags=["synchronization"], dependencies=[Read],
            summary="One sync request with its snapshot and errors")
def sync_request(request_id: PathId, runtime: RuntimeDep) -> SyncRequestDetail:
    request = runtime.outbox.get(request_id)
    if request is None:
        raise NotFound("sync request", request_id, "request_id")
    return SyncRequestDetail.model_validate({**SyncRequestOut.of(request).model_dump(),
                                             "snapshot": json.loads(request.payload)})


@router.post("/sync-requests/{request_id}/resend", tags=["synchronization"],
             dependencies=[Write],
             summary="Queue a request in ERROR again with the entity's current data")
def resend_sync_request(request_id: PathId, runtime: RuntimeDep) -> SyncRequestOut:
    return SyncRequestOut.of(runtime.outbox.resend(request_id, runtime.clock.now()))


class ResendRunOut(RunOut):
    """A resend of the requests in ERROR (``total``: those in ERROR when it began, null when
    filtered by code or entity type): its progress while it goes, its report at the end."""

    stop_requested: bool
    report: ResendErrorsOut | None = Field(description="once it has ended (FINISHED, "
                                                       "STOPPED)")


def resend_work(runtime: Runtime, code: str | None = None, entity_type: str | None = None
                ) -> Callable[[Run[ResendReport]], ResendReport]:
    """A resend of every request in ERROR (of ``code`` and ``entity_type`` if given) as the
    work of a run: its progress counted on the run, stopped between chunks by its stop."""

    def work(run: Run[ResendReport]) -> ResendReport:
        filtered = code is not None or entity_type is not None
        run.begin(None if filtered else runtime.outbox.counts()[SyncRequestState.ERROR.value])
        return runtime.outbox.resend_errors(runtime.clock.now(), code=code,
                                            entity_type=entity_type, progress=run.advance,
                                            stop=run.stop.is_set)

    return work


def resend_runs_of(request: Request) -> Runs[ResendReport]:
    return runs_of(request, "resend_runs")


def _resend_path(run: Run[ResendReport]) -> str:
    return f"/api/sync-requests/resend-errors/{run.id}"


def _resend_out(report: ResendReport) -> ResendErrorsOut:
    return ResendErrorsOut(
        examined=report.examined, resent=report.resent,
        carried_by_pending=report.carried_by_pending,
        failed=[ResendFailure(request_id=request_id, reason=reason)
                for request_id, reason in report.failed],
        stopped=report.stopped)


def resend_run_out(live: Run[ResendReport]) -> ResendRunOut:
    run = live.snapshot()
    return ResendRunOut(
        **RunOut.progress_of(run), stop_requested=run.stop_requested,
        report=None if run.result is None else _resend_out(run.result))


@router.post("/sync-requests/resend-errors", tags=["synchronization"], dependencies=[Write],
             summary="Queue every request in ERROR again (once the cause is fixed)",
             responses={202: {"model": ResendRunOut,
                              "description": "Accepted (Prefer: respond-async): the resend "
                                             "has begun; Location names it"}})
def resend_sync_errors(
    request: Request, response: Response, runtime: RuntimeDep,
    code: Annotated[str | None, Query(min_length=1, max_length=100,
                                      pattern=r"^[^\x00-\x1f\x7f]+$",
                                      description="only requests with an error of this "
                                                  "code, e.g. D2-USSPDTVAL")] = None,
    entity_type: Annotated[str | None, Query(
        pattern=r"^(SA|PERSON|SA_RELATIONSHIP)$",
        description="only requests of this entity type: SA, PERSON or SA_RELATIONSHIP")] = None,
    prefer: PreferHeader = None,
) -> Any:
    run = started(resend_runs_of(request), RESEND_ERRORS,
                  resend_work(runtime, code, entity_type), runtime.clock.now,
                  _resend_path, busy="wait for it, or stop it with POST {path}/stop")
    return answered(run, prefer, response, _resend_path(run), lambda: resend_run_out(run),
                    _resend_out)


@router.get("/sync-requests/resend-errors/{run_id}", tags=["synchronization"],
            dependencies=[Read], summary="One resend of the requests in ERROR: its progress, "
                                         "then its report")
def resend_run(run_id: PathId, request: Request) -> ResendRunOut:
    return resend_run_out(_resend_run(request, run_id))


@router.post("/sync-requests/resend-errors/{run_id}/stop", tags=["synchronization"],
             dependencies=[Write], status_code=status.HTTP_202_ACCEPTED,
             summary="Ask a resend to end after the chunk under way")
def stop_resend_run(run_id: PathId, request: Request) -> ResendRunOut:
    run = _resend_run(request, run_id)
    run.ask_to_stop("resend")
    return resend_run_out(run)


def _resend_run(request: Request, run_id: str) -> Run[ResendReport]:
    run = resend_runs_of(request).get(run_id)
    if run is None:
        raise NotFound("resend", run_id, "run_id")
    return run


@router.get("/usage-subscriptions", tags=["MDM"], dependencies=[Read],
            summary="Usage subscriptions in MDM, optionally by status or service point")
def usage_subscription_list(
    runtime: RuntimeDep,
    us_status: Annotated[UsStatus | None, Query(alias="status")] = None,
    sp_id: Filter = None,
) -> list[UsageSubscription]:
    return runtime.mdm.list_us(status=us_status, sp_id=sp_id)


@router.get("/usage-subscriptions/{external_id}", tags=["MDM"], dependencies=[Read],
            summary="One usage subscription by external id (the SA id)")
def usage_subscription(external_id: PathId, runtime: RuntimeDep) -> UsageSubscription:
    found = runtime.mdm.get_us(external_id)
    if found is None:
        raise NotFound("usage subscription", external_id, "external_id")
    return found
