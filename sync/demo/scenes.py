"""The scenes of the demonstration: the main scenarios of the landlord/tenant stop-service
process (seed 004) played on the sample building PR-4410, each followed by settling the pipeline.

Every scene says in a line what happened in CCB and in MDM; the lines are read back from both
stores after the scene, not written in advance, so a scene that goes wrong says so.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sync.ccb.commands import (
    CancelPendingStop,
    ChangeStopDate,
    CompleteFieldActivity,
    RequestStop,
    StartService,
)
from sync.ccb.model import DrillKey, FaPurpose, FaStatus, ServiceAgreement
from sync.ccb.sync_requests import SyncRequestState
from sync.demo.stage import Stage
from sync.pipeline.local import SettleReport
from sync.storage.ccb_view import SqlCcbView

UNIT_1, UNIT_2, UNIT_3 = "PR-4410-1", "PR-4410-2", "PR-4410-3"
LANDLORD, TENANT_1, TENANT_2, NEW_TENANT = "A-LL-01", "A-TN-01", "A-TN-02", "A-TN-03"
MOVE_OUT = dt.date(2025, 3, 14)
LATER_MOVE_OUT = dt.date(2025, 3, 17)
MOVE_IN = dt.date(2025, 3, 10)
UNIT_2_STOP = dt.date(2025, 3, 21)
EXCHANGED_SP = "SP-4410-2E"  # the meter whose register goes missing in the last scene
FIELD_USAGE = 100.0  # what a meter advances between its last known read and a field visit


@dataclass
class Scene:
    title: str
    steps: str
    ccb: str
    mdm: str
    sync: dict[str, int] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    number: int = 0  # its place in the demonstration, given when it is played

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "title": self.title, "steps": self.steps,
                "ccb": self.ccb, "mdm": self.mdm, "sync": self.sync, "facts": self.facts}


def sync_counts(*reports: SettleReport) -> dict[str, int]:
    """What settling moved: records published, MDM's verdicts and CCB's acknowledgement verdicts
    (``RETRY`` is an order-sensitive rejection re-queued, never an error)."""
    counts: Counter[str] = Counter()
    for report in reports:
        counts["published"] += report.published
        counts.update({f"mdm_{verdict}": n for verdict, n in report.mdm_verdicts.items()})
        counts.update({f"ack_{verdict.lower()}": n for verdict, n in report.ack_verdicts.items()})
        counts["todos_raised"] += report.todos_raised
    return dict(counts)


# --- words -------------------------------------------------------------------------------------


def ids(items: Iterable[ServiceAgreement]) -> str:
    return ", ".join(sa.id for sa in items) or "none"


def statuses(sas: Iterable[ServiceAgreement]) -> str:
    return "; ".join(f"{sa.id} {sa.status.label} ({sa.status.value})"
                     + (f" until {sa.end_date.isoformat()}" if sa.end_date else "")
                     for sa in sas) or "none"


def stopped_by(sas: Iterable[ServiceAgreement]) -> str:
    """Who set the stops: the customer, or the system and why (``new tenant start``)."""
    found = {f"the system ({sa.stopped_by.reason})" if sa.stopped_by.kind == "system"
             else "the customer" for sa in sas if sa.stopped_by is not None}
    return ", ".join(sorted(found)) or "nobody"


def us_states(stage: Stage, sas: Iterable[ServiceAgreement], versions: bool = False) -> str:
    parts = []
    for sa in sas:
        us = stage.us(sa.id)
        if us is None:
            parts.append(f"{sa.id} not in MDM")
            continue
        period = f" from {us.start_date.isoformat()}" if us.status.value == "PENDING" else ""
        period += f" until {us.end_date.isoformat()}" if us.end_date else ""
        period += f" (version {us.last_applied_version})" if versions else ""
        parts.append(f"{us.external_id} {us.status.value}{period}")
    return "US " + "; ".join(parts) if parts else "no usage subscription"


def at(stage: Stage, premise_id: str, account_id: str) -> list[ServiceAgreement]:
    return [sa for sa in stage.sas()
            if sa.premise_id == premise_id and sa.account_id == account_id]


def refreshed(stage: Stage, sas: Iterable[ServiceAgreement]) -> list[ServiceAgreement]:
    return [stage.sa(sa.id) for sa in sas]


# --- the scenes ------------------------------------------------------------------------------


async def load_building(stage: Stage) -> Scene:
    data = stage.sample()
    stage.load(data, "examples/premise-landlord.yaml")
    report = await stage.settle()
    sas = stage.sas()
    return Scene("The building: PR-4410, three units and a landlord agreement", "",
                 f"loaded {len(data['persons'])} persons, {len(data['accounts'])} accounts, "
                 f"{len(data['premises'])} premises, {len(data['service_points'])} service "
                 f"points and {len(sas)} SAs: {statuses(sas)}",
                 us_states(stage, sas), sync_counts(report))


async def stop_with_reversion(stage: Stage) -> Scene:
    before = {sa.id for sa in stage.sas()}
    stage.run(RequestStop(account_id=TENANT_1, premise_id=UNIT_1, stop_date=MOVE_OUT))
    report = await stage.settle()
    tenant = at(stage, UNIT_1, TENANT_1)
    landlord = [sa for sa in stage.new_sas(before) if sa.account_id == LANDLORD]
    stop_fas = [fa.id for fa in stage.field_activities()
                if fa.sa_id in {sa.id for sa in tenant} and fa.purpose is FaPurpose.STOP]
    return Scene(
        "Tenant moves out of unit 1: stop with landlord reversion", "1.1-1.5, 4.7",
        f"{TENANT_1} stops its service at unit 1 on {MOVE_OUT.isoformat()}: {statuses(tenant)};"
        f" stop FAs {', '.join(stop_fas) or 'none'}. Landlord reversion starts {statuses(landlord)}"
        f" for {LANDLORD}",
        us_states(stage, tenant + landlord), sync_counts(report),
        {"tenant": [sa.id for sa in tenant], "landlord": [sa.id for sa in landlord]})


async def back_to_back_move_in(stage: Stage) -> Scene:
    before = {sa.id for sa in stage.sas()}
    for sa_type in ("E-RES", "G-RES"):
        stage.run(StartService(account_id=NEW_TENANT, sa_type=sa_type, premise_id=UNIT_3,
                               start_date=MOVE_IN))
    report = await stage.settle()
    created = stage.new_sas(before)
    newcomer = [sa for sa in created if sa.account_id == NEW_TENANT]
    reverted = [sa for sa in created if sa.account_id == LANDLORD]
    outgoing = at(stage, UNIT_3, LANDLORD)
    return Scene(
        "New tenant moves into unit 3 the day the landlord's service ends: back-to-back",
        "1.1-1.2, 4.7",
        f"{NEW_TENANT} starts {statuses(newcomer)} at unit 3 on {MOVE_IN.isoformat()}; the"
        f" landlord's {statuses(outgoing)}, stopped by {stopped_by(outgoing)}; landlord SAs"
        f" created: {ids(reverted)}",
        us_states(stage, newcomer + outgoing), sync_counts(report),
        {"new_tenant": [sa.id for sa in newcomer], "landlord_created": len(reverted)})


async def change_of_stop_date(stage: Stage) -> Scene:
    tenant = at(stage, UNIT_1, TENANT_1)
    for sa in tenant:
        stage.run(ChangeStopDate(sa_id=sa.id, stop_date=LATER_MOVE_OUT))
    report = await stage.settle()
    tenant = refreshed(stage, tenant)
    landlord = at(stage, UNIT_1, LANDLORD)
    starts = ", ".join(f"{sa.id} from {sa.start_date.isoformat()}" for sa in landlord)
    return Scene(
        "Tenant of unit 1 stays three days longer: the landlord start follows", "4.8-5.3",
        f"{TENANT_1} moves the stop to {LATER_MOVE_OUT.isoformat()}: {statuses(tenant)};"
        f" landlord pending start {starts or 'none'}",
        us_states(stage, tenant + landlord), sync_counts(report))


async def cancel_of_a_stop(stage: Stage) -> Scene:
    before = {sa.id for sa in stage.sas()}
    tenant = at(stage, UNIT_2, TENANT_2)
    stage.run(RequestStop(account_id=TENANT_2, premise_id=UNIT_2, stop_date=UNIT_2_STOP))
    requested = await stage.settle()
    landlord = [sa for sa in stage.new_sas(before) if sa.account_id == LANDLORD]
    for sa in tenant:
        stage.run(CancelPendingStop(sa_id=sa.id))
    canceled = await stage.settle()
    tenant, landlord = refreshed(stage, tenant), refreshed(stage, landlord)
    return Scene(
        "Tenant of unit 2 changes their mind: cancel of a pending stop", "5.4-5.6, 4.5",
        f"{TENANT_2} requests a stop on {UNIT_2_STOP.isoformat()} (landlord reversion"
        f" {ids(landlord)}), then cancels it: {statuses(tenant)}; landlord {statuses(landlord)}",
        us_states(stage, tenant + landlord), sync_counts(requested, canceled),
        {"tenant": [sa.id for sa in tenant], "landlord": [sa.id for sa in landlord]})


async def activation_batch(stage: Stage) -> Scene:
    lines, reports, changed = [], [], []
    for day in (MOVE_IN, LATER_MOVE_OUT):
        stage.clock.set(day)
        before = {sa.id: sa.status for sa in stage.sas()}
        completed = complete_due_field_work(stage, day)
        batch = stage.batch("SAACT")
        reports.append(await stage.settle())
        now = {sa.id: sa for sa in stage.sas()}
        moved = [now[sa_id] for sa_id, status in before.items() if now[sa_id].status != status]
        changed += moved
        lines.append(f"{day.isoformat()}: field crews complete FAs {', '.join(completed) or 'none'}"
                     f" with their reads; SAACT examined {batch.examined}, errors "
                     f"{len(batch.errors)}: {statuses(moved)}")
    return Scene("Business days 2025-03-10 and 2025-03-17: field work and SAACT",
                 "1.6, 5.9-6.0", "; ".join(lines), us_states(stage, changed),
                 sync_counts(*reports), {"changed": [sa.id for sa in changed]})


def complete_due_field_work(stage: Stage, day: dt.date) -> list[str]:
    """Complete the pending FAs scheduled up to ``day`` with a field read: the SP's last known
    read plus some usage, the same read for two FAs at one SP (one visit, back-to-back)."""
    due = [fa for fa in stage.field_activities()
           if fa.status is FaStatus.PENDING and fa.scheduled_date <= day]
    visited: dict[str, float] = {}
    for fa in due:
        if fa.sp_id not in visited:
            visited[fa.sp_id] = last_known_read(stage, fa.sp_id) + FIELD_USAGE
        stage.run(CompleteFieldActivity(fa_id=fa.id, read_value=visited[fa.sp_id]))
    return [fa.id for fa in due]


def last_known_read(stage: Stage, sp_id: str) -> float:
    def read(view: SqlCcbView) -> float:
        values = [r.value for r in view.reads_of_sp(sp_id)]
        values += [link.start_read for link in view.links_at_sp(sp_id)
                   if link.start_read is not None]
        return max(values, default=0.0)

    return stage.read(read)


async def validation_error_and_resend(stage: Stage) -> Scene:
    """The asset record of SP-4410-2E is reloaded without its kWh register (a meter exchange
    keyed in half way): MDM's D2-VALUSMC rejects the SA snapshot and CCB raises a To Do; the
    register is restored and the errored request resent."""
    outbox = stage.pipeline.outbox
    [record] = [sp for sp in stage.sample()["service_points"] if sp["id"] == EXCHANGED_SP]
    stage.load({"service_points": [{**record, "measuring_components": []}]},
               "meter-exchange.yaml")
    rejected = await stage.settle()
    errored = outbox.find(state=SyncRequestState.ERROR)
    codes = sorted({error.code for request in errored for error in request.errors})
    todo_type = stage.admin.todo_type_for("sync_error")
    keys = [DrillKey(kind="sa", id=request.entity_id) for request in errored]
    opened = [todo for todo in stage.read(lambda view: [view.open_todo(todo_type, key)
                                                        for key in keys]) if todo is not None]
    stage.load({"service_points": [record]}, "meter-exchange-fix.yaml")
    carriers = [outbox.resend(request.id, stage.clock.now()) for request in errored]
    resent = await stage.settle()
    done = [todo for todo in stage.read(lambda view: [view.todo(t.id) for t in opened])
            if todo is not None]
    sas = [stage.sa(request.entity_id) for request in errored]
    return Scene(
        "MDM rejects a snapshot: sync error To Do, fix in CCB, resend", "1.4-1.5, 6.1-6.4",
        f"{EXCHANGED_SP} reloaded without its kWh register: MDM rejects"
        f" {', '.join(f'{r.id} for {r.entity_id}' for r in errored) or 'nothing'}"
        f" ({', '.join(codes) or 'no error'}), To Do {', '.join(t.id for t in opened) or 'none'}"
        f" opened. Register restored and {', '.join(r.id for r in errored) or 'nothing'} resent"
        f" (as {', '.join(c.id for c in carriers) or 'none'}): To Do"
        f" {', '.join(f'{t.id} {t.status.value}' for t in done) or 'none'}",
        f"nothing applied while in error; after the resend {us_states(stage, sas, True)}",
        sync_counts(rejected, resent),
        {"errored": [r.id for r in errored], "codes": codes,
         "todos": [t.id for t in opened], "resent_as": [c.id for c in carriers]})


# The validation error plays before unit 2's stop: later its SP also carries the landlord's
# canceled start, whose snapshot MDM would reject too, which tells the same story twice.
SCENES: tuple[Callable[[Stage], Awaitable[Scene]], ...] = (
    load_building, stop_with_reversion, back_to_back_move_in, change_of_stop_date,
    validation_error_and_resend, cancel_of_a_stop, activation_batch)
