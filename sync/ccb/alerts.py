"""Dashboard alerts of an account (step 1.3, Control Central), derived, never stored.

Pending start, pending stop, stopped SA highlight (``C1-STOP-SA``) and the landlord indicator
come from the account's SAs and the premises they serve. A sync error alert comes from an open
sync error or timeout To Do on one of the account's SAs (see :mod:`sync.ccb.sync_requests`): it
stays until the SA is synchronized again, which completes the To Do. An open To Do alert comes
from every other To Do not yet complete (open or being worked) that points at the account, one
of its SAs or one of their field activities: an activation that needs a person, an old pending
start, a field activity with no usable reads, a canceled adjustment; it goes when the To Do is
completed. :func:`dashboard_alerts` derives them all with the admin data's To Do types.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sync.ccb.model import DrillKey, SaStatus, ToDoEntry
from sync.ccb.ports import CcbView
from sync.ccb.reversion import effective_landlord_agreement
from sync.ccb.sync_requests import sync_todo_types
from sync.config.admin import AdminConfig


@dataclass(frozen=True)
class PendingStartAlert:
    sa_id: str
    sa_type: str
    start_date: dt.date
    premise_id: str | None

    @property
    def text(self) -> str:
        return f"Pending start: SA {self.sa_id} ({self.sa_type}) on {self.start_date.isoformat()}"


@dataclass(frozen=True)
class PendingStopAlert:
    sa_id: str
    sa_type: str
    stop_date: dt.date
    premise_id: str | None

    @property
    def text(self) -> str:
        return f"Pending stop: SA {self.sa_id} ({self.sa_type}) on {self.stop_date.isoformat()}"


@dataclass(frozen=True)
class StoppedSaHighlight:
    """``C1-STOP-SA``: a stopped SA stands out on the dashboard."""

    sa_id: str
    sa_type: str
    stop_date: dt.date | None

    @property
    def text(self) -> str:
        when = self.stop_date.isoformat() if self.stop_date else "?"
        return f"Stopped: SA {self.sa_id} ({self.sa_type}) since {when}"


@dataclass(frozen=True)
class LandlordIndicator:
    """The premise is under a landlord agreement; ``is_landlord`` when this account is the
    agreement's landlord."""

    premise_id: str
    agreement_id: str
    landlord_account_id: str
    is_landlord: bool

    @property
    def text(self) -> str:
        role = "landlord of" if self.is_landlord else "landlord agreement at"
        return f"Landlord: {role} premise {self.premise_id} ({self.agreement_id})"


@dataclass(frozen=True)
class SyncErrorAlert:
    """MDM rejected (or never answered) the SA's latest sync request."""

    sa_id: str
    todo_id: str
    todo_type: str

    @property
    def text(self) -> str:
        return f"Sync error: SA {self.sa_id} is not synchronized with MDM (To Do {self.todo_id})"


@dataclass(frozen=True)
class OpenToDoAlert:
    """A To Do not yet complete on the account, one of its SAs or their field activities."""

    todo_id: str
    todo_type: str
    drill_kind: str  # account | sa | fa
    drill_id: str
    status: str  # the To Do status: open | being_worked
    message: str

    @property
    def text(self) -> str:
        target = {"account": "account", "sa": "SA", "fa": "FA"}[self.drill_kind]
        return (f"Open To Do {self.todo_id} ({self.todo_type}, {self.status}) on {target} "
                f"{self.drill_id}: {self.message}")

    @classmethod
    def of(cls, entry: ToDoEntry) -> OpenToDoAlert:
        return cls(entry.id, entry.todo_type, entry.drill_key.kind, entry.drill_key.id,
                   entry.status.value, entry.message)


Alert = (PendingStartAlert | PendingStopAlert | StoppedSaHighlight | LandlordIndicator
         | SyncErrorAlert | OpenToDoAlert)


def dashboard_alerts(view: CcbView, admin: AdminConfig, account_id: str) -> list[Alert]:
    """The account's alerts as the dashboard shows them: :func:`account_alerts` with the admin
    data's sync To Do types and every other To Do type."""
    sync_types = sync_todo_types(admin)
    return account_alerts(view, account_id, sync_types,
                          tuple(code for code in admin.todo_types if code not in sync_types))


def account_alerts(view: CcbView, account_id: str, sync_todo_types: Sequence[str] = (),
                   todo_types: Sequence[str] = ()) -> list[Alert]:
    """The account's alerts: one per pending start, pending stop and stopped SA, then one
    landlord indicator per premise under a landlord agreement, then one per SA with an open To
    Do of ``sync_todo_types`` (the sync error and timeout types), then one per To Do of
    ``todo_types`` not yet complete on the account, one of its SAs or their field activities
    (in that order, SAs and their field activities by start date)."""
    alerts: list[Alert] = []
    sync_alerts: list[Alert] = []
    todo_alerts: list[Alert] = [alert for todo_type in todo_types
                                if (alert := _todo_alert(view, todo_type, "account", account_id))]
    premise_ids: list[str] = []
    for sa in sorted(view.sas_of_account(account_id), key=lambda sa: (sa.start_date, sa.id)):
        if sa.status is SaStatus.PENDING_START:
            alerts.append(PendingStartAlert(sa.id, sa.sa_type, sa.start_date, sa.premise_id))
        elif sa.status is SaStatus.PENDING_STOP and sa.end_date is not None:
            alerts.append(PendingStopAlert(sa.id, sa.sa_type, sa.end_date, sa.premise_id))
        elif sa.status is SaStatus.STOPPED:
            alerts.append(StoppedSaHighlight(sa.id, sa.sa_type, sa.end_date))
        if (sa.premise_id is not None and sa.status is not SaStatus.CANCELED
                and sa.premise_id not in premise_ids):
            premise_ids.append(sa.premise_id)
        for todo_type in sync_todo_types:
            entry = view.open_todo(todo_type, DrillKey(kind="sa", id=sa.id))
            if entry is not None:
                sync_alerts.append(SyncErrorAlert(sa.id, entry.id, todo_type))
                break
        if todo_types:
            targets = [("sa", sa.id), *(("fa", fa.id) for fa in sorted(
                view.field_activities_of_sa(sa.id), key=lambda fa: (fa.scheduled_date, fa.id)))]
            todo_alerts += [alert for kind, target in targets for todo_type in todo_types
                            if (alert := _todo_alert(view, todo_type, kind, target))]
    for premise_id in premise_ids:
        agreement = effective_landlord_agreement(view, premise_id)
        if agreement is not None:
            alerts.append(LandlordIndicator(premise_id, agreement.id,
                                            agreement.landlord_account_id,
                                            agreement.landlord_account_id == account_id))
    return alerts + sync_alerts + todo_alerts


def _todo_alert(view: CcbView, todo_type: str, kind: str, target: str) -> OpenToDoAlert | None:
    # At most one entry not complete per type and drill key (the To Do rule), so a lookup
    # per type finds them all.
    entry = view.open_todo(todo_type, DrillKey(kind=kind, id=target))
    return OpenToDoAlert.of(entry) if entry is not None else None
