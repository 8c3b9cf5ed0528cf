"""CSR commands that start, stop and change service (SPEC.md sections 3 and 4).

Each handler has the shape ``handler(view, ids, admin, command, today, now) -> Changes``: it
reads through a :class:`~sync.ccb.work.Work`, changes SAs only through the lifecycle primitives,
re-evaluates landlord reversion at the SPs it touched, records a customer contact on the
account's main person, and finally checks that no two SAs serve one SP on the same day. Any
error is raised before anything is persisted, so bad input changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sync.algorithms import Spot, registry
from sync.ccb.changes import Changes
from sync.ccb.commands import (
    ActivateSa,
    CancelPendingStart,
    CancelPendingStop,
    ChangeStartDate,
    ChangeStopDate,
    CompleteFieldActivity,
    RequestStop,
    StartService,
    StopSa,
)
from sync.ccb.contacts import contact_for_account
from sync.ccb.coverage import check_no_overlap
from sync.ccb.errors import InvalidCommand, InvalidTransition, NotFound
from sync.ccb.fieldwork import complete_field_activity
from sync.ccb.lifecycle import (
    Action,
    activate,
    cancel_start,
    clear_stop,
    move_start,
    next_status,
    set_stop,
    start_sa,
    stop,
    stop_blocker,
)
from sync.ccb.model import (
    Account,
    Address,
    CreatedBy,
    SaStatus,
    ServiceAgreement,
    ServicePoint,
)
from sync.ccb.ports import CcbView, IdSource
from sync.ccb.reversion import (
    REVERSION_REASON,
    reevaluate_reversion,
    release_landlord_stops,
    yield_to_incoming_start,
)
from sync.ccb.work import Work
from sync.config.admin import AdminConfig

CUSTOMER = CreatedBy(kind="customer")
# The contact type a stop request records (none when the installation does not define it).
STOP_CONTACT = "STOPSVC"


# --- shared helpers ----------------------------------------------------------------------


def require_sa(view: CcbView, sa_id: str) -> ServiceAgreement:
    sa = view.sa(sa_id)
    if sa is None:
        raise NotFound("SA", sa_id, "sa_id")
    return sa


def require_account(view: CcbView, account_id: str) -> Account:
    account = view.account(account_id)
    if account is None:
        raise NotFound("account", account_id, "account_id")
    return account


def earliest_stop_date(admin: AdminConfig, today: dt.date) -> dt.date:
    """The earliest date a stop may be back-dated to on ``today``."""
    return today - dt.timedelta(days=admin.installation.max_back_dated_stop_days)


def check_not_back_dated(work: Work, sa_id: str, field: str, day: dt.date) -> None:
    if day < earliest_stop_date(work.admin, work.today):
        raise InvalidCommand("SA", sa_id, field,
                             f"{day.isoformat()} is back-dated more than"
                             f" {work.admin.installation.max_back_dated_stop_days} days"
                             f" before {work.today.isoformat()}")


def check_stop_date(work: Work, sa: ServiceAgreement, stop_date: dt.date) -> None:
    if stop_date < sa.start_date:
        raise InvalidCommand("SA", sa.id, "stop_date",
                             f"{stop_date.isoformat()} is before the start date"
                             f" {sa.start_date.isoformat()}")
    check_not_back_dated(work, sa.id, "stop_date", stop_date)


def sp_ids_of(work: Work, sas: Iterable[ServiceAgreement]) -> list[str]:
    return sorted({link.sp_id for sa in sas for link in work.links_of_sa(sa.id)})


def record_contact(work: Work, account_id: str, contact_type: str, method: str,
                   premise_id: str | None, comments: str) -> None:
    """The customer contact a service-changing CSR command records on the main person."""
    if contact_type not in work.admin.contact_types:
        return  # an installation without this contact type records none
    work.save_contact(contact_for_account(
        work, work.ids, work.admin, account_id=account_id, contact_type=contact_type,
        method=method, user=work.user, now=work.now, premise_id=premise_id,
        comments=comments))


def finish(work: Work) -> Changes:
    """The last check of every command: no two SAs serve one SP on the same day."""
    check_no_overlap(work, work.admin, {link.sp_id for link in work.changes.links.values()}
                     | {link.sp_id for sa in work.changes.sas.values()
                        for link in work.links_of_sa(sa.id)})
    return work.changes


def _is_reverted(sa: ServiceAgreement) -> bool:
    return sa.created_by.reason == REVERSION_REASON


def _at_sps(work: Work, sa: ServiceAgreement) -> list[ServiceAgreement]:
    """Other SAs linked to any of the SA's SPs."""
    found: dict[str, ServiceAgreement] = {}
    for link in work.links_of_sa(sa.id):
        for other_link in work.links_at_sp(link.sp_id):
            other = work.sa(other_link.sa_id)
            if other is not None and other.id != sa.id:
                found[other.id] = other
    return list(found.values())


# --- stop --------------------------------------------------------------------------------


@registry.implements(Spot.IMMEDIATE_STOP, "C1-SAIS-ST")
def stop_when_ready(work: Work, sa: ServiceAgreement) -> bool:
    """Stop a pending stop at once when its date is reached and no fieldwork is outstanding,
    instead of waiting for the activation batch (step 3.3)."""
    current = work.sa(sa.id) or sa
    if current.status is SaStatus.PENDING_STOP and stop_blocker(work, current) is None:
        stop(work, current, "immediate stop (C1-SAIS-ST)")
        return True
    return False


def stop_service(work: Work, account: Account, targets: list[ServiceAgreement],
                 stop_date: dt.date, forwarding_address: Address | None) -> None:
    """Steps 1.1–1.9 for the chosen SAs: pending stop, links stopped, stop FAs, forwarding
    address stored, landlord reversion evaluated, immediate stop when configured."""
    for sa in targets:
        if sa.account_id != account.id:
            raise InvalidCommand("SA", sa.id, "account_id",
                                 f"belongs to account {sa.account_id!r}, not {account.id!r}")
        if sa.status is not SaStatus.ACTIVE:
            reason = ("cancel the pending start instead" if sa.status is SaStatus.PENDING_START
                      else None)
            raise InvalidTransition(sa.id, sa.status, Action.REQUEST_STOP.value, reason)
        check_stop_date(work, sa, stop_date)
    for sa in targets:
        set_stop(work, work.sa(sa.id) or sa, stop_date, CUSTOMER, forwarding_address)
    reevaluate_reversion(work, sp_ids_of(work, targets))
    code = work.admin.algorithms.immediate_stop
    if code is not None:
        immediate = registry.get(Spot.IMMEDIATE_STOP, code)
        for sa in targets:
            immediate(work, work.sa(sa.id) or sa)


def request_stop(view: CcbView, ids: IdSource, admin: AdminConfig, command: RequestStop,
                 today: dt.date, now: dt.datetime) -> Changes:
    work = Work(view, ids, admin, today, now, command.user)
    request_stop_in(work, command)
    return finish(work)


def request_stop_in(work: Work, command: RequestStop) -> None:
    """Steps 1.1-1.9 within ``work``: one request of a unit that may hold many (a mass stop
    upload), each seeing the ones before it."""
    admin = work.admin
    account = require_account(work, command.account_id)
    targets: dict[str, ServiceAgreement] = {}
    for sa_id in command.sa_ids:
        targets[sa_id] = require_sa(work, sa_id)
    if command.premise_id is not None:
        if work.premise(command.premise_id) is None:
            raise NotFound("premise", command.premise_id, "premise_id")
        at_premise = [sa for sa in work.sas_at_premise(command.premise_id)
                      if sa.account_id == account.id and sa.status is SaStatus.ACTIVE
                      and admin.sa_types[sa.sa_type].premise_based]
        if not at_premise and not command.sa_ids:
            raise InvalidCommand("premise", command.premise_id, "premise_id",
                                 f"account {account.id!r} has no active service here")
        targets.update((sa.id, sa) for sa in at_premise)
    if not targets:
        raise InvalidCommand("account", account.id, "sa_ids", "name the SAs or a premise to stop")
    chosen = list(targets.values())
    stop_service(work, account, chosen, command.stop_date, command.forwarding_address)
    premise_id = command.premise_id or chosen[0].premise_id
    record_contact(work, account.id, STOP_CONTACT, command.contact_method, premise_id,
                   stop_contact_comments(command.stop_date, targets))


def stop_contact_comments(stop_date: dt.date, sa_ids: Iterable[str]) -> str:
    """What the customer contact of a stop request says."""
    return f"stop on {stop_date.isoformat()}: SA " + ", ".join(sorted(sa_ids))


def change_stop_date(view: CcbView, ids: IdSource, admin: AdminConfig, command: ChangeStopDate,
                     today: dt.date, now: dt.datetime) -> Changes:
    work = Work(view, ids, admin, today, now, command.user)
    sa = require_sa(work, command.sa_id)
    next_status(sa, Action.CHANGE_STOP_DATE)
    if sa.end_date is None:
        raise InvalidTransition(sa.id, sa.status, Action.CHANGE_STOP_DATE.value,
                                "it has no pending stop")
    check_stop_date(work, sa, command.stop_date)
    old_end = sa.end_date
    for other in _at_sps(work, sa):
        tied = sa.stopped_by is not None and sa.stopped_by.reciprocal_sa_id == other.id
        if (other.status is SaStatus.PENDING_START and other.start_date == old_end
                and not (_is_reverted(other) and other.created_by.reciprocal_sa_id == sa.id)
                and (command.move_next_start or tied)):
            move_start(work, other, command.stop_date, f"follows the stop date of SA {sa.id}")
    set_stop(work, work.sa(sa.id) or sa, command.stop_date, sa.stopped_by or CUSTOMER)
    reevaluate_reversion(work, sp_ids_of(work, [sa]))
    record_contact(work, sa.account_id, "CHGDATE", command.contact_method, sa.premise_id,
                   f"SA {sa.id} stop date {old_end.isoformat()} ->"
                   f" {command.stop_date.isoformat()}")
    return finish(work)


def cancel_pending_stop(view: CcbView, ids: IdSource, admin: AdminConfig,
                        command: CancelPendingStop, today: dt.date, now: dt.datetime) -> Changes:
    work = Work(view, ids, admin, today, now, command.user)
    sa = require_sa(work, command.sa_id)
    next_status(sa, Action.CANCEL_PENDING_STOP)
    if sa.end_date is None:
        raise InvalidTransition(sa.id, sa.status, Action.CANCEL_PENDING_STOP.value,
                                "it has no pending stop")
    if command.cancel_next_start:
        for other in _at_sps(work, sa):
            if (other.status is SaStatus.PENDING_START and other.start_date == sa.end_date
                    and not _is_reverted(other)):
                cancel_start(work, other, f"canceled with the pending stop of SA {sa.id}")
    clear_stop(work, work.sa(sa.id) or sa)
    reevaluate_reversion(work, sp_ids_of(work, [sa]))
    record_contact(work, sa.account_id, "CANCEL", command.contact_method, sa.premise_id,
                   f"pending stop of SA {sa.id} canceled")
    return finish(work)


def stop_sa(view: CcbView, ids: IdSource, admin: AdminConfig, command: StopSa,
            today: dt.date, now: dt.datetime) -> Changes:
    """Steps 3.2–3.3: manual stop, under the same guards as the batch."""
    work = Work(view, ids, admin, today, now, command.user)
    stop(work, require_sa(work, command.sa_id), "manual stop")
    return finish(work)


# --- start -------------------------------------------------------------------------------


def _service_points_for(work: Work, command: StartService,
                        service_type: str) -> list[ServicePoint]:
    assert command.premise_id is not None
    if not command.sp_ids:
        found = [sp for sp in work.service_points_at(command.premise_id)
                 if work.admin.sp_types[sp.sp_type].service_type == service_type]
        if not found:
            raise InvalidCommand("premise", command.premise_id, "service_points",
                                 f"no service point of service type {service_type!r}")
        return found
    chosen: list[ServicePoint] = []
    for sp_id in command.sp_ids:
        sp = work.service_point(sp_id)
        if sp is None:
            raise NotFound("service point", sp_id, "sp_ids")
        if sp.premise_id != command.premise_id:
            raise InvalidCommand("service point", sp_id, "premise_id",
                                 f"is at premise {sp.premise_id!r}, not {command.premise_id!r}")
        if work.admin.sp_types[sp.sp_type].service_type != service_type:
            raise InvalidCommand("service point", sp_id, "sp_type",
                                 f"{sp.sp_type!r} is not of service type {service_type!r}")
        chosen.append(sp)
    return chosen


def start_service(view: CcbView, ids: IdSource, admin: AdminConfig, command: StartService,
                  today: dt.date, now: dt.datetime) -> Changes:
    work = Work(view, ids, admin, today, now, command.user)
    account = require_account(work, command.account_id)
    sa_type = admin.sa_types.get(command.sa_type)
    if sa_type is None:
        raise InvalidCommand("account", account.id, "sa_type",
                             f"unknown SA type {command.sa_type!r}")
    check_not_back_dated(work, "(new)", "start_date", command.start_date)
    if command.master_sa_id is not None:
        master = require_sa(work, command.master_sa_id)
        if master.account_id != account.id:
            raise InvalidCommand("SA", master.id, "master_sa_id",
                                 f"belongs to account {master.account_id!r}, not {account.id!r}")
    sp_ids: list[str] = []
    premise_id: str | None = None
    if sa_type.premise_based:
        if command.premise_id is None:
            raise InvalidCommand("account", account.id, "premise_id",
                                 f"SA type {command.sa_type!r} is premise based: name a premise")
        if work.premise(command.premise_id) is None:
            raise NotFound("premise", command.premise_id, "premise_id")
        premise_id = command.premise_id
        sp_ids = [sp.id for sp in _service_points_for(work, command, sa_type.service_type)]
    sa = start_sa(work, account_id=account.id, sa_type=command.sa_type, premise_id=premise_id,
                  sp_ids=sp_ids, start_date=command.start_date, created_by=CUSTOMER,
                  master_sa_id=command.master_sa_id)
    yield_to_incoming_start(work, sa)
    reevaluate_reversion(work, sp_ids)
    record_contact(work, account.id, "STARTSVC", command.contact_method, premise_id,
                   f"start of SA {sa.id} on {command.start_date.isoformat()}")
    return finish(work)


def _refuse_reverted(sa: ServiceAgreement, field: str, what: str) -> None:
    if _is_reverted(sa) and sa.status is SaStatus.PENDING_START:
        raise InvalidCommand("SA", sa.id, field,
                             f"a landlord reversion start {what}; change the stop of SA"
                             f" {sa.created_by.reciprocal_sa_id!r} instead")


def change_start_date(view: CcbView, ids: IdSource, admin: AdminConfig,
                      command: ChangeStartDate, today: dt.date, now: dt.datetime) -> Changes:
    work = Work(view, ids, admin, today, now, command.user)
    sa = require_sa(work, command.sa_id)
    next_status(sa, Action.CHANGE_START_DATE)
    _refuse_reverted(sa, "start_date", "follows the tenant's stop date")
    check_not_back_dated(work, sa.id, "start_date", command.start_date)
    old_start = sa.start_date
    for other in _at_sps(work, sa):
        tied = other.stopped_by is not None and other.stopped_by.reciprocal_sa_id == sa.id
        if (other.end_date == old_start and other.status in (SaStatus.PENDING_STOP,
                                                             SaStatus.PENDING_START)
                and (command.move_previous_stop or tied)):
            if command.start_date < other.start_date:
                raise InvalidCommand("SA", sa.id, "start_date",
                                     f"{command.start_date.isoformat()} is before the start"
                                     f" {other.start_date.isoformat()} of SA {other.id!r},"
                                     " whose stop would follow")
            set_stop(work, other, command.start_date, other.stopped_by or CUSTOMER,
                     details=f"follows the start date of SA {sa.id}")
    moved = move_start(work, work.sa(sa.id) or sa, command.start_date)
    yield_to_incoming_start(work, moved)
    reevaluate_reversion(work, sp_ids_of(work, [sa]))
    record_contact(work, sa.account_id, "CHGDATE", command.contact_method, sa.premise_id,
                   f"SA {sa.id} start date {old_start.isoformat()} ->"
                   f" {command.start_date.isoformat()}")
    return finish(work)


def cancel_pending_start(view: CcbView, ids: IdSource, admin: AdminConfig,
                         command: CancelPendingStart, today: dt.date,
                         now: dt.datetime) -> Changes:
    work = Work(view, ids, admin, today, now, command.user)
    sa = require_sa(work, command.sa_id)
    next_status(sa, Action.CANCEL_PENDING_START)
    _refuse_reverted(sa, "status", "ends with the tenant's pending stop")
    canceled = cancel_start(work, sa)
    release_landlord_stops(work, canceled)
    reevaluate_reversion(work, sp_ids_of(work, [sa]))
    record_contact(work, sa.account_id, "CANCEL", command.contact_method, sa.premise_id,
                   f"pending start of SA {sa.id} canceled")
    return finish(work)


def activate_sa(view: CcbView, ids: IdSource, admin: AdminConfig, command: ActivateSa,
                today: dt.date, now: dt.datetime) -> Changes:
    """Manual activation, under the same guards as the batch."""
    work = Work(view, ids, admin, today, now, command.user)
    activate(work, require_sa(work, command.sa_id), "manual activation")
    return finish(work)


def complete_fa(view: CcbView, ids: IdSource, admin: AdminConfig,
                command: CompleteFieldActivity, today: dt.date, now: dt.datetime) -> Changes:
    work = Work(view, ids, admin, today, now, command.user)
    complete_field_activity(work, command.fa_id, command.read_value,
                            command.completed_at or now)
    return finish(work)

