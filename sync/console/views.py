"""What the console pages show, read from CCB in one view: the account view (steps 1.0, 4.6),
the premise tree of a multi-unit property, and the pending start/stop list.

A unit's occupancy is read on the business date. *Serving* SAs are active (20), pending stop
(30) or reactivated (50) SAs that have started and not yet ended. A unit is ``tenant`` when a
serving SA belongs to an account other than the landlord's, ``landlord`` (vacant, carried by
the landlord) when only the landlord's SAs serve it, and ``vacant`` when nothing serves it; a
premise without service points or SAs (the building of a multi-unit property) is
``no_service_points``. Pending starts and stops are listed with the unit as what comes next.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from sync.ccb.alerts import Alert, dashboard_alerts
from sync.ccb.errors import NotFound
from sync.ccb.info import describe_account, describe_person, describe_sa
from sync.ccb.model import (
    Account,
    LandlordAgreement,
    Person,
    Premise,
    SaStatus,
    ServiceAgreement,
    ServicePoint,
)
from sync.ccb.premises import premise_tree, require_premise
from sync.ccb.reversion import REVERSION_REASON, effective_landlord_agreement
from sync.config.admin import AdminConfig
from sync.storage.ccb_view import SqlCcbView

Occupancy = Literal["tenant", "landlord", "vacant", "no_service_points"]


@dataclass(frozen=True)
class SaRow:
    sa: ServiceAgreement
    info: str
    is_landlord: bool  # the SA is the landlord's own service under the premise's agreement
    reverted: bool  # started by the system for a landlord reversion

    @property
    def status_text(self) -> str:
        return f"{self.sa.status.value} {self.sa.status.label}"


@dataclass(frozen=True)
class UnitNode:
    premise: Premise
    depth: int
    service_points: tuple[ServicePoint, ...]
    sas: tuple[SaRow, ...]
    occupancy: Occupancy
    occupied_by: tuple[str, ...]  # account ids serving the unit now
    upcoming: tuple[str, ...]  # the unit's pending starts and stops, in date order

    @property
    def occupancy_text(self) -> str:
        if self.occupancy == "tenant":
            return "occupied by " + ", ".join(self.occupied_by)
        if self.occupancy == "landlord":
            return "vacant: reverted to the landlord"
        if self.occupancy == "no_service_points":
            return "no service points"
        return "vacant: no service"


@dataclass(frozen=True)
class PremiseTreeView:
    root: Premise
    agreement: LandlordAgreement | None
    landlord: Person | None
    landlord_info: str | None
    nodes: tuple[UnitNode, ...]


def _sa_row(view: SqlCcbView, admin: AdminConfig, sa: ServiceAgreement,
            landlord_account_id: str | None) -> SaRow:
    return SaRow(sa=sa, info=describe_sa(admin, view, sa),
                 is_landlord=landlord_account_id is not None
                 and sa.account_id == landlord_account_id,
                 reverted=sa.created_by.kind == "system"
                 and sa.created_by.reason == REVERSION_REASON)


def _upcoming(row: SaRow) -> str | None:
    sa = row.sa
    who = "the landlord" if row.is_landlord else f"account {sa.account_id}"
    if sa.status is SaStatus.PENDING_START:
        verb = "reverts to the landlord" if row.reverted else f"{who} starts"
        return f"{sa.start_date.isoformat()}: {verb} (SA {sa.id}, {sa.sa_type})"
    if sa.status is SaStatus.PENDING_STOP and sa.end_date is not None:
        return f"{sa.end_date.isoformat()}: {who} stops (SA {sa.id}, {sa.sa_type})"
    return None


def _unit(view: SqlCcbView, admin: AdminConfig, premise: Premise, depth: int,
          today: dt.date) -> UnitNode:
    agreement = effective_landlord_agreement(view, premise.id)
    landlord_account = agreement.landlord_account_id if agreement else None
    sas = sorted(view.sas_at_premise(premise.id),
                 key=lambda sa: (sa.status is SaStatus.CANCELED, sa.sa_type, sa.start_date,
                                 sa.id))
    rows = tuple(_sa_row(view, admin, sa, landlord_account) for sa in sas)
    serving = [row for row in rows if row.sa.serves_on(today)]
    tenants = sorted({row.sa.account_id for row in serving if not row.is_landlord})
    service_points = tuple(view.service_points_at(premise.id))
    occupancy: Occupancy = ("tenant" if tenants else "landlord" if serving
                            else "vacant" if service_points or rows else "no_service_points")
    occupied_by = tuple(tenants) if tenants else tuple(
        sorted({row.sa.account_id for row in serving}))
    upcoming = sorted(
        ((row.sa.end_date if row.sa.status is SaStatus.PENDING_STOP else row.sa.start_date,
          text) for row in rows if (text := _upcoming(row)) is not None),
        key=lambda item: (item[0] or today, item[1]))
    return UnitNode(premise=premise, depth=depth,
                    service_points=service_points, sas=rows,
                    occupancy=occupancy, occupied_by=occupied_by,
                    upcoming=tuple(text for _, text in upcoming))


def top_premise(view: SqlCcbView, premise_id: str) -> Premise:
    """The premise's topmost parent (the building a unit belongs to)."""
    premise = require_premise(view, premise_id)
    seen = {premise.id}
    while premise.parent_premise_id is not None:
        parent = view.premise(premise.parent_premise_id)
        if parent is None or parent.id in seen:
            break
        seen.add(parent.id)
        premise = parent
    return premise


def premise_tree_view(view: SqlCcbView, admin: AdminConfig, premise_id: str,
                      today: dt.date) -> PremiseTreeView:
    """The whole property ``premise_id`` belongs to: its top premise and every unit below."""
    root = top_premise(view, premise_id)
    depth: dict[str, int] = {root.id: 0}
    nodes = []
    for premise in premise_tree(view, root.id):
        level = depth.get(premise.parent_premise_id or "", -1) + 1
        depth[premise.id] = level
        nodes.append(_unit(view, admin, premise, level, today))
    agreement = effective_landlord_agreement(view, root.id)
    landlord = view.person(agreement.landlord_person_id) if agreement else None
    return PremiseTreeView(root=root, agreement=agreement, landlord=landlord,
                           landlord_info=describe_person(admin, landlord) if landlord else None,
                           nodes=tuple(nodes))


@dataclass(frozen=True)
class AccountView:
    account: Account
    info: str
    person: Person | None
    person_info: str | None
    alerts: tuple[Alert, ...]
    by_status: tuple[tuple[SaStatus, tuple[SaRow, ...]], ...]
    trees: tuple[PremiseTreeView, ...]

    @property
    def stoppable(self) -> tuple[SaRow, ...]:
        return tuple(row for _, rows in self.by_status for row in rows
                     if row.sa.status is SaStatus.ACTIVE)


def account_view(view: SqlCcbView, admin: AdminConfig, account_id: str,
                 today: dt.date) -> AccountView:
    """Steps 1.0 / 4.6: the account with its alerts, its SAs by status and the premise tree of
    every property it has service at."""
    account = view.account(account_id)
    if account is None:
        raise NotFound("account", account_id, "account_id")
    person = view.person(account.main_person_id)
    sas = sorted(view.sas_of_account(account.id), key=lambda sa: (sa.start_date, sa.id))
    rows = [_sa_row(view, admin, sa, _landlord_account(view, sa)) for sa in sas]
    by_status = tuple((status, tuple(row for row in rows if row.sa.status is status))
                      for status in SaStatus if any(row.sa.status is status for row in rows))
    roots: dict[str, None] = {}
    for sa in sas:
        if sa.premise_id is not None and sa.status is not SaStatus.CANCELED:
            roots.setdefault(top_premise(view, sa.premise_id).id, None)
    return AccountView(
        account=account, info=describe_account(admin, view, account), person=person,
        person_info=describe_person(admin, person) if person else None,
        alerts=tuple(dashboard_alerts(view, admin, account.id)),
        by_status=by_status,
        trees=tuple(premise_tree_view(view, admin, root, today) for root in roots))


def _landlord_account(view: SqlCcbView, sa: ServiceAgreement) -> str | None:
    if sa.premise_id is None:
        return None
    agreement = effective_landlord_agreement(view, sa.premise_id)
    return agreement.landlord_account_id if agreement else None


@dataclass(frozen=True)
class PendingRow:
    sa: ServiceAgreement
    kind: Literal["start", "stop"]
    date: dt.date
    info: str
    due: bool  # the date has come: SAACT activates or stops it when ready
    reason: str | None  # why the system created or stopped it, if it did


def pending_starts_and_stops(view: SqlCcbView, admin: AdminConfig, today: dt.date,
                             limit: int | None = None) -> tuple[list[PendingRow], int]:
    """The pending starts (10) and pending stops (30), by date (the first ``limit`` of them),
    and how many there are. Only the rows kept are described (each description reads the
    SA's links and premise)."""
    found: list[tuple[dt.date, Literal["start", "stop"], ServiceAgreement, str | None]] = []
    for sa in view.sas_with_status(SaStatus.PENDING_START, SaStatus.PENDING_STOP):
        if sa.status is SaStatus.PENDING_START:
            kind: Literal["start", "stop"] = "start"
            date = sa.start_date
            reason = sa.created_by.reason if sa.created_by.kind == "system" else None
        else:
            kind, date = "stop", sa.end_date or sa.start_date
            reason = (sa.stopped_by.reason if sa.stopped_by is not None
                      and sa.stopped_by.kind == "system" else None)
        found.append((date, kind, sa, reason))
    found.sort(key=lambda item: (item[0], item[1], item[2].id))
    return [PendingRow(sa=sa, kind=kind, date=date, info=describe_sa(admin, view, sa),
                       due=date <= today, reason=reason)
            for date, kind, sa, reason in found[:limit]], len(found)
