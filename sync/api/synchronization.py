"""Sync requests (the outbox) and what MDM holds: list and show requests, resend one in
ERROR or every one (optionally of one error code or entity type), show and list usage
subscriptions (``c2m-sync ccb sync ...``, ``c2m-sync mdm us ...``).

A resend only queues the request again in the CCB store (``SqlOutbox.resend``); the relay of
``c2m-sync worker`` publishes it, as it publishes every other change.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query

from sync.api.deps import RuntimeDep
from sync.api.models import PathId
from sync.api.problems import responses
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

router = APIRouter(prefix="/api", responses=responses(401, 404, 409, 422))

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


@router.post("/sync-requests/resend-errors", tags=["synchronization"], dependencies=[Write],
             summary="Queue every request in ERROR again (once the cause is fixed)")
def resend_sync_errors(
    runtime: RuntimeDep,
    code: Annotated[str | None, Query(min_length=1, max_length=100,
                                      pattern=r"^[^\x00-\x1f\x7f]+$",
                                      description="only requests with an error of this "
                                                  "code, e.g. D2-USSPDTVAL")] = None,
    entity_type: Annotated[str | None, Query(
        pattern=r"^(SA|PERSON|SA_RELATIONSHIP)$",
        description="only requests of this entity type: SA, PERSON or SA_RELATIONSHIP")] = None,
) -> ResendErrorsOut:
    report = runtime.outbox.resend_errors(runtime.clock.now(), code=code,
                                          entity_type=entity_type)
    return ResendErrorsOut(
        examined=report.examined, resent=report.resent,
        carried_by_pending=report.carried_by_pending,
        failed=[ResendFailure(request_id=request_id, reason=reason)
                for request_id, reason in report.failed])


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
