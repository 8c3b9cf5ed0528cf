"""Response bodies of the CCB views: Control Central search, the account view, the premise
tree, SA details, the pending list and a pending stop's impact. Entities are the domain's own
pydantic models, so the OpenAPI document describes exactly what the store holds."""

from __future__ import annotations

import dataclasses
import datetime as dt
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

from sync.ccb.alerts import Alert
from sync.ccb.model import (
    Account,
    FieldActivity,
    FinancialTransaction,
    LandlordAgreement,
    Person,
    Premise,
    SaSpLink,
    SaStatus,
    ServiceAgreement,
    ServicePoint,
)
from sync.ccb.search import SearchBy, SearchResult
from sync.ccb.sync_requests import SyncError, SyncRequest, SyncRequestState


class AlertOut(BaseModel):
    """A dashboard alert (step 1.3); which fields are set depends on ``kind``."""

    kind: Literal["PendingStartAlert", "PendingStopAlert", "StoppedSaHighlight",
                  "LandlordIndicator", "SyncErrorAlert", "OpenToDoAlert"]
    text: str
    sa_id: str | None = None
    sa_type: str | None = None
    start_date: dt.date | None = None
    stop_date: dt.date | None = None
    premise_id: str | None = None
    agreement_id: str | None = None
    landlord_account_id: str | None = None
    is_landlord: bool | None = None
    todo_id: str | None = None
    todo_type: str | None = None
    drill_kind: str | None = None
    drill_id: str | None = None
    status: str | None = None
    message: str | None = None

    @classmethod
    def of(cls, alert: Alert) -> AlertOut:
        fields: dict[str, Any] = dataclasses.asdict(alert)
        return cls.model_validate({"kind": type(alert).__name__, "text": alert.text, **fields})


class SaLineOut(BaseModel):
    sa_id: str
    status: SaStatus
    info: str


class AccountLineOut(BaseModel):
    account_id: str
    info: str
    sas: list[SaLineOut]
    alerts: list[AlertOut]


class PersonHitOut(BaseModel):
    person_id: str
    info: str
    accounts: list[AccountLineOut]


class SearchOut(BaseModel):
    """Control Central (1.0, 4.6): persons with the accounts that made them match."""

    by: str
    query: str
    hits: list[PersonHitOut]
    truncated: bool = Field(description="more matched than shown: narrow the query")

    @classmethod
    def of(cls, result: SearchResult[Alert], by: str | None = None) -> SearchOut:
        return cls(by=by or result.by.value, query=result.query, truncated=result.truncated,
                   hits=[PersonHitOut(
                       person_id=hit.person_id, info=hit.info,
                       accounts=[AccountLineOut(
                           account_id=line.account_id, info=line.info,
                           sas=[SaLineOut(sa_id=sa.sa_id, status=sa.status, info=sa.info)
                                for sa in line.sas],
                           alerts=[AlertOut.of(alert) for alert in line.alerts])
                           for line in hit.accounts])
                       for hit in result.hits])


class SearchKind(StrEnum):
    """The domain's criteria, plus ``premise`` (a premise id: the accounts served there)."""

    NAME = SearchBy.NAME.value
    PHONE = SearchBy.PHONE.value
    ADDRESS = SearchBy.ADDRESS.value
    ACCOUNT = SearchBy.ACCOUNT.value
    PREMISE = "premise"
    SA = SearchBy.SA.value


class SaSummary(BaseModel):
    id: str
    account_id: str
    status: SaStatus
    status_label: str
    sa_type: str
    start_date: dt.date
    end_date: dt.date | None
    premise_id: str | None
    info: str

    @classmethod
    def of(cls, sa: ServiceAgreement, info: str) -> SaSummary:
        return cls(id=sa.id, account_id=sa.account_id, status=sa.status,
                   status_label=sa.status.label, sa_type=sa.sa_type, start_date=sa.start_date,
                   end_date=sa.end_date, premise_id=sa.premise_id, info=info)


class AccountPerson(BaseModel):
    role: Literal["main", "other"]
    person: Person
    info: str


class AccountView(BaseModel):
    """The account view (1.0, 4.6): info string, persons, SAs (also grouped by status code),
    alerts, and the main person's contacts."""

    account: Account
    info: str
    persons: list[AccountPerson]
    sas: list[SaSummary]
    sas_by_status: dict[str, list[str]] = Field(
        description="SA ids per status code (10 pending start ... 70 canceled), only the "
                    "statuses present")
    alerts: list[AlertOut]
    contacts: list[str] = Field(description="the main person's contacts, newest first")


class PremiseNode(BaseModel):
    premise: Premise
    landlord_agreement: LandlordAgreement | None = Field(
        description="the agreement in effect: the premise's own, else the nearest parent's")
    service_points: list[ServicePoint]
    sas: list[SaSummary]
    vacant: bool = Field(description="on the business date no tenant (an account other than "
                                     "the landlord's) has an SA in service here (active, "
                                     "pending stop or reactivated, started and not ended; an "
                                     "incoming tenant's pending start is not yet in service)")
    reverted: bool = Field(description="on the business date the landlord carries service here "
                                       "by a reversion the system started")


class PremiseView(BaseModel):
    """A premise with its parent and every unit below it."""

    premise: PremiseNode
    parent: Premise | None
    units: list[PremiseNode]


class RecordedChangeOut(BaseModel):
    seq: int
    unit_id: str
    entity_type: str
    entity_id: str
    changed_at: dt.datetime


class ResendFailure(BaseModel):
    request_id: str
    reason: str


class ResendErrorsOut(BaseModel):
    """What a resend of every request in ``ERROR`` did (``SqlOutbox.resend_errors``)."""

    examined: int = Field(description="requests in ERROR looked at")
    resent: list[str] = Field(description="ids of the requests queued again")
    carried_by_pending: int = Field(
        description="how many of them their entity's pending request carries")
    failed: list[ResendFailure] = Field(
        description="requests left in ERROR: their entity still cannot be snapshotted")
    stopped: bool = Field(default=False, description="asked to stop, it ended between two "
                                                     "chunks before every request in ERROR "
                                                     "was looked at (resend again for the "
                                                     "rest)")


class SyncRequestOut(BaseModel):
    id: str
    key: str
    seq: int
    entity_type: str
    entity_id: str
    state: SyncRequestState
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    sent_at: dt.datetime | None
    acknowledged_at: dt.datetime | None
    partition: int | None
    offset: int | None
    errors: list[SyncError]
    mdm_us_id: str | None
    sends: int
    retries: int
    note: str | None

    @classmethod
    def of(cls, request: SyncRequest) -> SyncRequestOut:
        return cls.model_validate({**request.model_dump(exclude={"payload", "fingerprint"}),
                                   "key": request.key})


class SyncRequestDetail(SyncRequestOut):
    snapshot: dict[str, Any] = Field(description="the wire message the request carries")


class SaDetails(BaseModel):
    """An SA with its links, field activities, FTs and balance, sub SAs, audit log (inside
    ``sa``), its recorded changes and its sync requests (newest first)."""

    sa: ServiceAgreement
    info: str
    links: list[SaSpLink]
    field_activities: list[FieldActivity]
    sub_sas: list[str]
    financial_transactions: list[FinancialTransaction]
    balance: str
    recorded_changes: list[RecordedChangeOut]
    sync_requests: list[SyncRequestOut]


class BriefSa(BaseModel):
    id: str
    account_id: str
    status: SaStatus
    start_date: dt.date
    end_date: dt.date | None

    @classmethod
    def of(cls, sa: ServiceAgreement | None) -> BriefSa | None:
        if sa is None:
            return None
        return cls(id=sa.id, account_id=sa.account_id, status=sa.status,
                   start_date=sa.start_date, end_date=sa.end_date)


class PendingStopImpactOut(BaseModel):
    """Steps 2.0-2.1: what a change to the pending stop would touch."""

    sa: BriefSa
    stop_date: dt.date
    reciprocal: BriefSa | None
    next_start: BriefSa | None
    pending_field_activities: list[str]
    moved_by_date_change: list[str]


class PendingItem(BaseModel):
    """A pending start or stop, as the pending monitor sees it."""

    sa_id: str
    account_id: str
    sa_type: str
    premise_id: str | None
    kind: Literal["start", "stop"]
    date: dt.date
    days_from_today: int = Field(description="negative: the date has passed")
    due: bool = Field(description="the date is on or before the business date (SAACT acts)")
