"""Dashboard alerts of an account (step 1.3, Control Central), derived, never stored.

Pending start, pending stop, stopped SA highlight (``C1-STOP-SA``) and the landlord indicator
come from the account's SAs and the premises they serve. A sync error alert comes from an open
sync error or timeout To Do on one of the account's SAs (see :mod:`sync.ccb.sync_requests`): it
stays until the SA is synchronized again, which completes the To Do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sync.ccb.model import DrillKey, SaStatus
from sync.ccb.ports import CcbView
from sync.ccb.reversion import effective_landlord_agreement


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


Alert = (PendingStartAlert | PendingStopAlert | StoppedSaHighlight | LandlordIndicator
         | SyncErrorAlert)


def account_alerts(view: CcbView, account_id: str,
                   sync_todo_types: Sequence[str] = ()) -> list[Alert]:
    """The account's alerts: one per pending start, pending stop and stopped SA, then one
    landlord indicator per premise under a landlord agreement, then one per SA with an open To
    Do of ``sync_todo_types`` (the sync error and timeout types)."""
    alerts: list[Alert] = []
    sync_alerts: list[Alert] = []
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
    for premise_id in premise_ids:
        agreement = effective_landlord_agreement(view, premise_id)
        if agreement is not None:
            alerts.append(LandlordIndicator(premise_id, agreement.id,
                                            agreement.landlord_account_id,
                                            agreement.landlord_account_id == account_id))
    return alerts + sync_alerts
