"""The SA lifecycle (SPEC.md section 3): one transition table that every change goes through.

:data:`TRANSITIONS` maps (status, action) to the next status; :func:`transition` is the only code
that changes an SA's status, so no command can bypass the table. Each transition appends an
:class:`AuditEntry` to the SA and saves it through :class:`~sync.ccb.work.Work`, which records the
SA in ``Changes.changed`` (the outbox hook).

The primitives below (:func:`start_sa`, :func:`set_stop`, :func:`clear_stop`, :func:`move_start`,
:func:`cancel_start`, :func:`activate`, :func:`stop`) keep the SA/SP links and field activities in
step with the SA. A pending start may carry a stop date (the landlord covering the gap until the
next tenant): it is recorded by the rows ``10 --request stop--> 10`` and friends, and the SA goes
on to pending stop as soon as it is activated.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from enum import StrEnum

from sync.ccb.errors import InvalidCommand, InvalidTransition
from sync.ccb.fieldwork import (
    apply_completion_reads,
    cancel_field_activities,
    fieldwork_at_request,
    missing_fieldwork,
    reschedule_field_activities,
)
from sync.ccb.finance import ZERO, balance, closing_bill_segments, frozen, money
from sync.ccb.model import (
    Address,
    AuditEntry,
    CreatedBy,
    FaPurpose,
    SaSpLink,
    SaStatus,
    ServiceAgreement,
)
from sync.ccb.work import Work


class Action(StrEnum):
    START_SERVICE = "start service"
    ACTIVATE = "activate"
    CHANGE_START_DATE = "change start date"
    CANCEL_PENDING_START = "cancel pending start"
    REQUEST_STOP = "request stop"
    CHANGE_STOP_DATE = "change stop date"
    CANCEL_PENDING_STOP = "cancel pending stop"
    STOP = "stop"
    CLOSE = "close"
    REACTIVATE = "reactivate"
    REINSTATE = "reinstate"
    CANCEL_SA = "cancel SA"


_S = SaStatus
TRANSITIONS: Mapping[tuple[SaStatus | None, Action], SaStatus] = {
    (None, Action.START_SERVICE): _S.PENDING_START,
    (_S.PENDING_START, Action.ACTIVATE): _S.ACTIVE,
    (_S.PENDING_START, Action.CHANGE_START_DATE): _S.PENDING_START,
    (_S.PENDING_START, Action.CANCEL_PENDING_START): _S.CANCELED,
    # A pending start that already knows its stop date (landlord covering a gap).
    (_S.PENDING_START, Action.REQUEST_STOP): _S.PENDING_START,
    (_S.PENDING_START, Action.CHANGE_STOP_DATE): _S.PENDING_START,
    (_S.PENDING_START, Action.CANCEL_PENDING_STOP): _S.PENDING_START,
    (_S.ACTIVE, Action.REQUEST_STOP): _S.PENDING_STOP,
    (_S.PENDING_STOP, Action.CHANGE_STOP_DATE): _S.PENDING_STOP,
    (_S.PENDING_STOP, Action.CANCEL_PENDING_STOP): _S.ACTIVE,
    (_S.PENDING_STOP, Action.STOP): _S.STOPPED,
    (_S.STOPPED, Action.CLOSE): _S.CLOSED,
    (_S.CLOSED, Action.REACTIVATE): _S.REACTIVATED,
    (_S.REACTIVATED, Action.CLOSE): _S.CLOSED,
    (_S.STOPPED, Action.REINSTATE): _S.ACTIVE,
    (_S.REACTIVATED, Action.REINSTATE): _S.ACTIVE,
    (_S.CLOSED, Action.REINSTATE): _S.ACTIVE,
    (_S.PENDING_START, Action.CANCEL_SA): _S.CANCELED,
    (_S.ACTIVE, Action.CANCEL_SA): _S.CANCELED,
    (_S.PENDING_STOP, Action.CANCEL_SA): _S.CANCELED,
    (_S.STOPPED, Action.CANCEL_SA): _S.CANCELED,
}


def next_status(sa: ServiceAgreement, action: Action) -> SaStatus:
    """The status ``action`` leads to from the SA's status; refuses anything not in the table."""
    try:
        return TRANSITIONS[(sa.status, action)]
    except KeyError:
        raise InvalidTransition(sa.id, sa.status, action.value) from None


def transition(work: Work, sa: ServiceAgreement, action: Action, details: str = "",
               **updates: object) -> ServiceAgreement:
    """Apply ``action`` to the SA (with field ``updates``), audit it and save it."""
    to_status = next_status(sa, action)
    entry = AuditEntry(at=work.now, user=work.user, action=action.value,
                       from_status=sa.status, to_status=to_status, details=details)
    changed = sa.model_copy(update={**updates, "status": to_status,
                                    "audit": (*sa.audit, entry)})
    return work.save_sa(changed)


def record(work: Work, sa: ServiceAgreement, action: str, line: str) -> ServiceAgreement:
    """Write what happened to the SA without a status change into its audit log, and note it
    for the user."""
    current = work.sa(sa.id) or sa
    # Same status on both sides: the audit chain of transitions stays unbroken.
    entry = AuditEntry(at=work.now, user=work.user, action=action, from_status=current.status,
                       to_status=current.status, details=line)
    work.note(line)
    return work.save_sa(current.model_copy(update={"audit": (*current.audit, entry)}))


def _check_stop_after_start(sa: ServiceAgreement, stop_date: dt.date) -> None:
    if stop_date < sa.start_date:
        raise InvalidCommand("SA", sa.id, "stop_date",
                             f"{stop_date.isoformat()} is before the start date"
                             f" {sa.start_date.isoformat()}")


def start_sa(work: Work, *, account_id: str, sa_type: str, premise_id: str | None,
             sp_ids: list[str], start_date: dt.date, created_by: CreatedBy,
             master_sa_id: str | None = None, details: str = "") -> ServiceAgreement:
    """A new pending-start SA with its SA/SP links (and start FAs when configured)."""
    sa_id = work.new_id("SA")
    status = TRANSITIONS[(None, Action.START_SERVICE)]
    entry = AuditEntry(at=work.now, user=work.user, action=Action.START_SERVICE.value,
                       from_status=None, to_status=status, details=details)
    sa = work.save_sa(ServiceAgreement(
        id=sa_id, account_id=account_id, sa_type=sa_type, status=status,
        start_date=start_date, premise_id=premise_id, master_sa_id=master_sa_id,
        created_by=created_by, audit=(entry,)))
    for sp_id in sp_ids:
        work.save_link(SaSpLink(id=work.new_id("LINK"), sa_id=sa_id, sp_id=sp_id,
                                start_date=start_date))
    fieldwork_at_request(work, sa, FaPurpose.START)
    work.note(f"SA {sa_id} ({sa_type}) pending start on {start_date.isoformat()}"
              f" for account {account_id}")
    return sa


def set_stop(work: Work, sa: ServiceAgreement, stop_date: dt.date, stopped_by: CreatedBy,
             forwarding_address: Address | None = None, details: str = "") -> ServiceAgreement:
    """Request a stop (or change the stop date) on ``stop_date``; links, FAs and sub SAs follow."""
    action = Action.REQUEST_STOP if sa.end_date is None else Action.CHANGE_STOP_DATE
    next_status(sa, action)
    _check_stop_after_start(sa, stop_date)
    old_end = sa.end_date
    updates: dict[str, object] = {"end_date": stop_date, "stopped_by": stopped_by}
    if forwarding_address is not None:
        updates["forwarding_address"] = forwarding_address
    changed = transition(work, sa, action, details or f"stop date {stop_date.isoformat()}",
                         **updates)
    for link in work.links_of_sa(sa.id):
        if link.stop_date is None or link.stop_date == old_end:
            work.save_link(link.model_copy(update={"stop_date": stop_date}))
    if action is Action.REQUEST_STOP:
        fieldwork_at_request(work, changed, FaPurpose.STOP)
    else:
        reschedule_field_activities(work, changed, FaPurpose.STOP, stop_date)
    for sub in work.sub_sas(sa.id):
        if sub.status in (_S.ACTIVE, _S.PENDING_STOP) and sub.end_date != stop_date:
            set_stop(work, sub, max(stop_date, sub.start_date), stopped_by,
                     details=f"master SA {sa.id} stops")
    work.note(f"SA {sa.id} {action.value}: {stop_date.isoformat()}")
    return changed


def clear_stop(work: Work, sa: ServiceAgreement, details: str = "") -> ServiceAgreement:
    """Cancel a pending stop: end date and link stop dates cleared, stop FAs canceled."""
    next_status(sa, Action.CANCEL_PENDING_STOP)
    old_end = sa.end_date
    if old_end is None:
        raise InvalidTransition(sa.id, sa.status, Action.CANCEL_PENDING_STOP.value,
                                "it has no stop date")
    changed = transition(work, sa, Action.CANCEL_PENDING_STOP, details, end_date=None,
                         stopped_by=None)
    for link in work.links_of_sa(sa.id):
        if link.stop_date == old_end:
            work.save_link(link.model_copy(update={"stop_date": None}))
    cancel_field_activities(work, changed, FaPurpose.STOP)
    for sub in work.sub_sas(sa.id):
        if sub.status is _S.PENDING_STOP and sub.end_date == old_end:
            clear_stop(work, sub, f"master SA {sa.id} stop canceled")
    work.note(f"SA {sa.id} pending stop canceled")
    return changed


def move_start(work: Work, sa: ServiceAgreement, start_date: dt.date,
               details: str = "") -> ServiceAgreement:
    """Change a pending start's date; links and start FAs follow."""
    next_status(sa, Action.CHANGE_START_DATE)
    if sa.end_date is not None and start_date > sa.end_date:
        raise InvalidCommand("SA", sa.id, "start_date",
                             f"{start_date.isoformat()} is after the stop date"
                             f" {sa.end_date.isoformat()}")
    old_start = sa.start_date
    changed = transition(work, sa, Action.CHANGE_START_DATE,
                         details or f"start date {start_date.isoformat()}",
                         start_date=start_date)
    for link in work.links_of_sa(sa.id):
        if link.start_date == old_start:
            work.save_link(link.model_copy(update={"start_date": start_date}))
    reschedule_field_activities(work, changed, FaPurpose.START, start_date)
    work.note(f"SA {sa.id} start date {start_date.isoformat()}")
    return changed


def cancel_start(work: Work, sa: ServiceAgreement, details: str = "") -> ServiceAgreement:
    """Cancel a pending start (final); its FAs are canceled."""
    changed = transition(work, sa, Action.CANCEL_PENDING_START, details)
    cancel_field_activities(work, changed, FaPurpose.START)
    cancel_field_activities(work, changed, FaPurpose.STOP)
    work.note(f"SA {sa.id} pending start canceled")
    return changed


def activation_blocker(work: Work, sa: ServiceAgreement) -> str | None:
    """Why a pending start cannot be activated today (None: it can)."""
    if sa.start_date > work.today:
        return f"start date {sa.start_date.isoformat()} not reached"
    if sa.master_sa_id is not None:
        master = work.sa(sa.master_sa_id)
        if master is None or master.status is not _S.ACTIVE:
            return f"master SA {sa.master_sa_id!r} is not active"
    return missing_fieldwork(work, sa, FaPurpose.START)


def stop_blocker(work: Work, sa: ServiceAgreement) -> str | None:
    """Why a pending stop cannot be stopped today (None: it can)."""
    if sa.end_date is None or sa.end_date > work.today:
        when = sa.end_date.isoformat() if sa.end_date else "none"
        return f"stop date {when} not reached"
    return missing_fieldwork(work, sa, FaPurpose.STOP)


def activate(work: Work, sa: ServiceAgreement, details: str = "") -> ServiceAgreement:
    """10 -> 20 when the date is reached and start fieldwork is complete; an SA that already
    carries its stop date goes straight on to pending stop."""
    next_status(sa, Action.ACTIVATE)
    blocker = activation_blocker(work, sa)
    if blocker is not None:
        raise InvalidTransition(sa.id, sa.status, Action.ACTIVATE.value, blocker)
    apply_completion_reads(work, sa, FaPurpose.START)
    active = transition(work, sa, Action.ACTIVATE, details)
    work.note(f"SA {sa.id} active")
    if active.end_date is not None:
        active = transition(work, active, Action.REQUEST_STOP,
                            f"stop date {active.end_date.isoformat()} recorded while pending start")
    return active


def stop(work: Work, sa: ServiceAgreement, details: str = "") -> ServiceAgreement:
    """30 -> 40 when the date is reached and stop fieldwork is complete; then the stop
    consequences run (:func:`sync.ccb.consequences.run_stop_consequences`)."""
    next_status(sa, Action.STOP)
    blocker = stop_blocker(work, sa)
    if blocker is not None:
        raise InvalidTransition(sa.id, sa.status, Action.STOP.value, blocker)
    apply_completion_reads(work, sa, FaPurpose.STOP)
    stopped = transition(work, sa, Action.STOP, details)
    work.note(f"SA {sa.id} stopped")
    # Imported here: the consequences stop sub SAs through this module.
    from sync.ccb.consequences import run_stop_consequences

    run_stop_consequences(work, stopped)
    return stopped


# --- after the stop: close, reactivate, reinstate, cancel (steps 6.5-7.9) ------------------

AFTER_STOP = (_S.STOPPED, _S.REACTIVATED, _S.CLOSED)


def close_blocker(work: Work, sa: ServiceAgreement) -> str | None:
    """Why a stopped or reactivated SA cannot be closed now (None: it can)."""
    fts = work.financial_transactions_of_sa(sa.id)
    if not closing_bill_segments(fts):
        return "its final bill (a closing bill segment) is not out"
    owed = balance(fts)
    if owed != ZERO:
        return f"its balance is {money(owed)}, not zero"
    return None


def settle(work: Work, sa: ServiceAgreement, event: str) -> ServiceAgreement:
    """Steps 7.3-7.4, after a financial ``event`` on the SA: a closed SA is reactivated by it
    (60 -> 50); a stopped or reactivated SA whose final bill is out and whose balance is zero
    is closed (40/50 -> 60)."""
    current = work.sa(sa.id) or sa
    if current.status is _S.CLOSED:
        current = transition(work, current, Action.REACTIVATE, f"{event} after close")
        work.note(f"SA {sa.id} reactivated: {event} after close")
    if current.status in (_S.STOPPED, _S.REACTIVATED) and close_blocker(work, current) is None:
        current = transition(work, current, Action.CLOSE, "balance zero after the final bill")
        work.note(f"SA {sa.id} closed: balance zero after the final bill")
    return current


def reinstate_blocker(work: Work, sa: ServiceAgreement) -> str | None:
    """Why the SA (and its sub SAs after the stop) cannot be reinstated (None: it can)."""
    closing = closing_bill_segments(work.financial_transactions_of_sa(sa.id))
    if closing:
        return (f"closing bill segment {', '.join(ft.id for ft in closing)} must be canceled"
                " first")
    for sub in work.sub_sas(sa.id):
        if sub.status in AFTER_STOP and reinstate_blocker(work, sub) is not None:
            return f"sub SA {sub.id}: {reinstate_blocker(work, sub)}"
    return None


def reinstate(work: Work, sa: ServiceAgreement, details: str = "") -> ServiceAgreement:
    """Steps 7.6-7.9: a stopped, reactivated or closed SA back to active, keeping its billing
    history. End date, stop reads and the link stop dates that ended with it are cleared, and
    its sub SAs after the stop come back with it."""
    next_status(sa, Action.REINSTATE)
    blocker = reinstate_blocker(work, sa)
    if blocker is not None:
        raise InvalidTransition(sa.id, sa.status, Action.REINSTATE.value, blocker)
    old_end = sa.end_date
    changed = transition(work, sa, Action.REINSTATE, details, end_date=None, stopped_by=None)
    for link in work.links_of_sa(sa.id):
        if link.stop_date is not None and link.stop_date == old_end:
            work.save_link(link.model_copy(update={"stop_date": None, "stop_read": None}))
    work.note(f"SA {sa.id} reinstated: active again")
    for sub in work.sub_sas(sa.id):
        if sub.status in AFTER_STOP:
            reinstate(work, sub, f"master SA {sa.id} reinstated")
    return changed


def cancel_sa(work: Work, sa: ServiceAgreement, details: str = "") -> ServiceAgreement:
    """Steps 7.1-7.2: cancel an SA created or stopped in error (final); every FT of the SA
    must be canceled first. Its pending field activities are canceled."""
    next_status(sa, Action.CANCEL_SA)
    open_fts = frozen(work.financial_transactions_of_sa(sa.id))
    if open_fts:
        raise InvalidTransition(sa.id, sa.status, Action.CANCEL_SA.value,
                                "financial transaction "
                                + ", ".join(sorted(ft.id for ft in open_fts))
                                + " not canceled; cancel every FT of the SA first")
    changed = transition(work, sa, Action.CANCEL_SA, details)
    cancel_field_activities(work, changed, FaPurpose.START)
    cancel_field_activities(work, changed, FaPurpose.STOP)
    work.note(f"SA {sa.id} canceled")
    return changed
