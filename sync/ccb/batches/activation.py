"""``SAACT``: activate due pending starts and stop due pending stops (steps 5.9, 6.0).

A pending start whose start date is on or before the business date is activated (10 -> 20)
when it is ready; a pending stop whose stop date is reached is stopped (30 -> 40), which runs
the stop consequences. "Ready" is the lifecycle's own guard (:func:`activation_blocker`,
:func:`stop_blocker`: a sub SA's master active, every required FA complete with a read), so the
batch and the manual commands can never disagree. An SA that is due but not ready gets one open
``sa_activation`` To Do saying what is missing; raising it again while it is open changes
nothing. When the SA later moves on, the batch completes that To Do (and the old-pending one of
``TD-SSFTL``), so the worklist shows only SAs still stuck.
"""

from __future__ import annotations

from sync.ccb.batches.common import (
    ItemOutcome,
    Result,
    batch_sa,
    raise_batch_todo,
    resolve_todos,
)
from sync.ccb.lifecycle import activate, activation_blocker, stop, stop_blocker
from sync.ccb.model import DrillKey, SaStatus, ServiceAgreement
from sync.ccb.work import Work

CODE = "SAACT"
# The To Dos that say "this pending SA is stuck"; both are resolved when it moves on.
STUCK_PURPOSES = ("sa_activation", "old_pending")


def activate_or_stop(work: Work, sa_id: str) -> ItemOutcome:
    """Move one due pending SA on, or say (once) what it is waiting for."""
    sa = batch_sa(work, sa_id)
    if sa.status is SaStatus.PENDING_START:
        if sa.start_date > work.today:
            return _not_due(sa, f"start date {sa.start_date.isoformat()} not reached")
        with_master = _activate_due_master(work, sa)
        blocker = activation_blocker(work, sa)
        if blocker is not None:
            return _stuck(work, sa, "activated", blocker)
        activate(work, sa, f"activation batch ({CODE})")
        resolve_todos(work, DrillKey(kind="sa", id=sa.id), STUCK_PURPOSES,
                      f"SA activated by {CODE} on {work.today.isoformat()}")
        detail = f"activated with master SA {with_master[0]}" if with_master else "activated"
        return ItemOutcome("SA", sa.id, Result.CHANGED, detail, also_changed=with_master)
    if sa.status is SaStatus.PENDING_STOP:
        if sa.end_date is None or sa.end_date > work.today:
            when = sa.end_date.isoformat() if sa.end_date else "none"
            return _not_due(sa, f"stop date {when} not reached")
        blocker = stop_blocker(work, sa)
        if blocker is not None:
            return _stuck(work, sa, "stopped", blocker)
        stop(work, sa, f"activation batch ({CODE})")
        resolve_todos(work, DrillKey(kind="sa", id=sa.id), STUCK_PURPOSES,
                      f"SA stopped by {CODE} on {work.today.isoformat()}")
        return ItemOutcome("SA", sa.id, Result.CHANGED, "stopped")
    # Selected as pending but changed since (a CSR, or an earlier SA of the chunk).
    return _not_due(sa, f"status {sa.status.value} ({sa.status.label}): nothing to do")


def _activate_due_master(work: Work, sa: ServiceAgreement) -> tuple[str, ...]:
    """A sub SA may only follow an active master: when the master is itself a due pending
    start, activate it first, whatever order the run meets them in."""
    if sa.master_sa_id is None:
        return ()
    master = work.sa(sa.master_sa_id)
    if master is None or master.status is not SaStatus.PENDING_START:
        return ()
    if master.start_date > work.today or activation_blocker(work, master) is not None:
        return ()
    outcome = activate_or_stop(work, master.id)
    return (master.id, *outcome.also_changed) if outcome.result is Result.CHANGED else ()


def _not_due(sa: ServiceAgreement, detail: str) -> ItemOutcome:
    return ItemOutcome("SA", sa.id, Result.UNCHANGED, detail)


def _stuck(work: Work, sa: ServiceAgreement, verb: str, blocker: str) -> ItemOutcome:
    date = sa.start_date if verb == "activated" else sa.end_date
    when = date.isoformat() if date else "?"
    message = f"SA {sa.id} ({sa.sa_type}) due on {when} cannot be {verb}: {blocker}"
    created = raise_batch_todo(work, "sa_activation", DrillKey(kind="sa", id=sa.id), message)
    return ItemOutcome("SA", sa.id, Result.TODO if created else Result.UNCHANGED,
                       blocker if created else f"{blocker} (To Do already open)")
