"""CCB reads: Control Central search, the account view, the premise tree, SA details, a
pending stop's impact and the pending start/stop list (``c2m-sync ccb search|account|premise|
sa``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from sqlalchemy import select

from sync.api.deps import RuntimeDep, read
from sync.api.models import (
    DEFAULT_LIST_LIMIT,
    ListAfter,
    ListLimit,
    ListOffset,
    PathId,
    page,
)
from sync.api.problems import responses
from sync.api.security import Read
from sync.api.view_models import (
    AccountPerson,
    AccountView,
    AlertOut,
    BriefSa,
    PendingItem,
    PendingStopImpactOut,
    PersonHitOut,
    PremiseNode,
    PremiseView,
    RecordedChangeOut,
    SaDetails,
    SaSummary,
    SearchKind,
    SearchOut,
    SyncRequestOut,
)
from sync.ccb.alerts import Alert, dashboard_alerts
from sync.ccb.changes import SA
from sync.ccb.details import pending_stop_impact
from sync.ccb.errors import NotFound
from sync.ccb.finance import balance, money
from sync.ccb.info import describe_account, describe_person, describe_sa
from sync.ccb.model import Premise, SaStatus
from sync.ccb.premises import premise_tree
from sync.ccb.reversion import effective_landlord_agreement
from sync.ccb.search import MAX_QUERY_LENGTH, SearchBy, SearchResult, search
from sync.config.admin import AdminConfig
from sync.storage.ccb_schema import entity_changes
from sync.storage.ccb_view import SqlCcbView

router = APIRouter(prefix="/api", tags=["CCB views"], dependencies=[Read],
                   responses=responses(401, 404, 422))

RECORDED_CHANGES_SHOWN = 100
SYNC_REQUESTS_SHOWN = 20


@router.get("/search", summary="Control Central search (1.0, 4.6)")
def search_customers(
    runtime: RuntimeDep,
    by: Annotated[SearchKind, Query(description="what q is")],
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_LENGTH, pattern=r"^[^\x00]*$",
                            description="name prefix, phone, address fragment or an id")],
) -> SearchOut:
    admin, today = runtime.admin, runtime.clock.business_date()
    if by is SearchKind.PREMISE:
        return read(runtime, lambda view: _premise_search(view, admin, q, today))
    return SearchOut.of(read(runtime, lambda view: search(view, admin, SearchBy(by.value), q,
                                                          today)))


def _premise_search(view: SqlCcbView, admin: AdminConfig, premise_id: str,
                    today: dt.date) -> SearchOut:
    """The accounts with SAs at the premise, each found as an account search finds it,
    merged per person."""
    premise_id = premise_id.strip()
    account_ids = sorted({sa.account_id for sa in view.sas_at_premise(premise_id)})
    hits: dict[str, PersonHitOut] = {}
    for account_id in account_ids:
        result: SearchResult[Alert] = search(view, admin, SearchBy.ACCOUNT, account_id,
                                             today)
        for hit in SearchOut.of(result).hits:
            found = hits.setdefault(hit.person_id, hit.model_copy(update={"accounts": []}))
            found.accounts.extend(hit.accounts)
    return SearchOut(by=SearchKind.PREMISE.value, query=premise_id, truncated=False,
                     hits=sorted(hits.values(), key=lambda hit: (hit.info, hit.person_id)))


@router.get("/accounts/{account_id}", summary="Account view: persons, SAs, alerts (1.0, 4.6)")
def account_view(account_id: PathId, runtime: RuntimeDep) -> AccountView:
    admin = runtime.admin

    def view_of(view: SqlCcbView) -> AccountView:
        account = view.account(account_id)
        if account is None:
            raise NotFound("account", account_id, "account_id")
        persons = []
        for role, person_id in [("main", account.main_person_id),
                                *(("other", other) for other in account.other_person_ids)]:
            person = view.person(person_id)
            if person is not None:
                persons.append(AccountPerson(role=role,
                                             person=person,
                                             info=describe_person(admin, person)))
        sas = sorted(view.sas_of_account(account.id), key=lambda sa: (sa.start_date, sa.id))
        by_status: dict[str, list[str]] = {}
        for sa in sas:
            by_status.setdefault(sa.status.value, []).append(sa.id)
        return AccountView(
            account=account, info=describe_account(admin, view, account), persons=persons,
            sas=[SaSummary.of(sa, describe_sa(admin, view, sa)) for sa in sas],
            sas_by_status=dict(sorted(by_status.items())),
            alerts=[AlertOut.of(alert) for alert in dashboard_alerts(view, admin, account.id)],
            contacts=[contact.id for contact in view.contacts_of_person(account.main_person_id)])

    return read(runtime, view_of)


@router.get("/premises/{premise_id}",
            summary="Premise tree: parent, units, landlord agreement, vacant and reverted")
def premise_view(premise_id: PathId, runtime: RuntimeDep) -> PremiseView:
    admin = runtime.admin

    def view_of(view: SqlCcbView) -> PremiseView:
        tree = premise_tree(view, premise_id)
        top = tree[0]
        parent = view.premise(top.parent_premise_id) if top.parent_premise_id else None
        today = runtime.clock.business_date()
        nodes = [_node(view, admin, premise, today) for premise in tree]
        return PremiseView(premise=nodes[0], parent=parent, units=nodes[1:])

    return read(runtime, view_of)


def _node(view: SqlCcbView, admin: AdminConfig, premise: Premise,
          today: dt.date) -> PremiseNode:
    agreement = effective_landlord_agreement(view, premise.id)
    landlord = agreement.landlord_account_id if agreement is not None else None
    sas = sorted(view.sas_at_premise(premise.id), key=lambda sa: (sa.start_date, sa.id))
    serving = [sa for sa in sas if sa.serves_on(today)]
    return PremiseNode(
        premise=premise, landlord_agreement=agreement,
        service_points=view.service_points_at(premise.id),
        sas=[SaSummary.of(sa, describe_sa(admin, view, sa)) for sa in sas],
        vacant=not any(sa.account_id != landlord for sa in serving),
        reverted=any(sa.account_id == landlord and sa.created_by.kind == "system"
                     for sa in serving))


@router.get("/sas/{sa_id}", summary="An SA: links, FAs, FTs, audit log, changes, sync requests")
def sa_details(sa_id: PathId, runtime: RuntimeDep) -> SaDetails:
    admin = runtime.admin

    def view_of(view: SqlCcbView) -> SaDetails:
        sa = view.sa(sa_id)
        if sa is None:
            raise NotFound("SA", sa_id, "sa_id")
        fts = sorted(view.financial_transactions_of_sa(sa.id),
                     key=lambda ft: (ft.accounting_date, ft.id))
        column = entity_changes.c
        rows = view.connection.execute(
            select(entity_changes).where(column.entity_type == SA, column.entity_id == sa.id)
            .order_by(column.seq.desc()).limit(RECORDED_CHANGES_SHOWN)).mappings().all()
        return SaDetails(
            sa=sa, info=describe_sa(admin, view, sa), links=view.links_of_sa(sa.id),
            field_activities=view.field_activities_of_sa(sa.id),
            sub_sas=[sub.id for sub in view.sub_sas(sa.id)], financial_transactions=fts,
            balance=money(balance(fts)),
            recorded_changes=[RecordedChangeOut.model_validate(dict(row)) for row in rows],
            sync_requests=[])

    details = read(runtime, view_of)
    requests = runtime.outbox.find(entity_type=SA, entity_id=sa_id, newest_first=True,
                                   limit=SYNC_REQUESTS_SHOWN)
    return details.model_copy(update={"sync_requests": [SyncRequestOut.of(request)
                                                        for request in requests]})


@router.get("/sas/{sa_id}/pending-stop-impact",
            summary="What changing the SA's pending stop would touch (2.0-2.1)")
def sa_pending_stop_impact(sa_id: PathId, runtime: RuntimeDep) -> PendingStopImpactOut:
    impact = read(runtime, lambda view: pending_stop_impact(view, sa_id))
    brief = BriefSa.of(impact.sa)
    assert brief is not None
    return PendingStopImpactOut(
        sa=brief, stop_date=impact.stop_date, reciprocal=BriefSa.of(impact.reciprocal),
        next_start=BriefSa.of(impact.next_start),
        pending_field_activities=[fa.id for fa in impact.pending_field_activities],
        moved_by_date_change=[sa.id for sa in impact.moved_by_date_change])


@router.get("/pending", summary="Pending starts and stops, earliest date first")
def pending_list(
    runtime: RuntimeDep,
    response: Response,
    kind: Annotated[Literal["start", "stop"] | None, Query(
        description="only pending starts or only pending stops")] = None,
    due: Annotated[bool | None, Query(description="only those whose date has come (true) or "
                                                  "not yet (false)")] = None,
    limit: ListLimit = DEFAULT_LIST_LIMIT,
    offset: ListOffset = 0,
    after: ListAfter = None,
) -> list[PendingItem]:
    today = runtime.clock.business_date()
    statuses = {"start": (SaStatus.PENDING_START,), "stop": (SaStatus.PENDING_STOP,),
                None: (SaStatus.PENDING_START, SaStatus.PENDING_STOP)}[kind]
    items = []
    for sa in read(runtime, lambda view: view.sas_with_status(*statuses)):
        is_stop = sa.status is SaStatus.PENDING_STOP
        date = sa.end_date if is_stop and sa.end_date is not None else sa.start_date
        item = PendingItem(sa_id=sa.id, account_id=sa.account_id, sa_type=sa.sa_type,
                           premise_id=sa.premise_id, kind="stop" if is_stop else "start",
                           date=date, days_from_today=(date - today).days, due=date <= today)
        if due is None or item.due is due:
            items.append(item)
    return page(sorted(items, key=lambda item: (item.date, item.sa_id)), response, offset,
                limit, after=after, key=lambda item: (item.date.isoformat(), item.sa_id))
