"""CSR commands on an SA's finances and on the end of its life (steps 6.5-7.9): freeze and
cancel financial transactions (closing and reactivating the SA as its balance goes), cancel an
SA, reinstate an SA.

Handlers have the shape of :mod:`sync.ccb.stop_start`'s: ``handler(view, ids, admin, command,
today, now) -> Changes``, every check made before anything is persisted.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol, cast

from sync.algorithms import Spot, registry
from sync.ccb.changes import Changes
from sync.ccb.commands import (
    AddFinancialTransaction,
    CancelFinancialTransaction,
    CancelSa,
    ReinstateSa,
)
from sync.ccb.errors import InvalidTransition, NotFound
from sync.ccb.finance import cancel_ft, closing_bill_segments, describe, new_ft
from sync.ccb.lifecycle import AFTER_STOP, cancel_sa, cancel_start, reinstate, settle
from sync.ccb.model import DrillKey, SaStatus, ServiceAgreement
from sync.ccb.ports import CcbView, IdSource
from sync.ccb.reversion import reevaluate_reversion, release_landlord_stops, reverted_sa_of
from sync.ccb.stop_start import finish, require_sa, sp_ids_of
from sync.ccb.todo import raise_todo
from sync.ccb.work import Work
from sync.config.admin import AdminConfig

ADD_FT = "take a financial transaction"


def add_financial_transaction(view: CcbView, ids: IdSource, admin: AdminConfig,
                              command: AddFinancialTransaction, today: dt.date,
                              now: dt.datetime) -> Changes:
    work = Work(view, ids, admin, today, now, command.user)
    sa = require_sa(work, command.sa_id)
    if sa.status is SaStatus.CANCELED:
        raise InvalidTransition(sa.id, sa.status, ADD_FT, "canceled is final")
    if command.closing_bill_segment:
        if sa.status not in AFTER_STOP:
            raise InvalidTransition(sa.id, sa.status, "take a closing bill segment",
                                    "only a stopped SA gets its final bill")
        existing = closing_bill_segments(work.financial_transactions_of_sa(sa.id))
        if existing:
            raise InvalidTransition(sa.id, sa.status, "take a closing bill segment",
                                    f"{describe(existing[0])} is already its final bill")
    ft = new_ft(work, sa, command.kind, command.amount,
                closing_bill_segment=command.closing_bill_segment,
                adjustment_type=command.adjustment_type)
    settle(work, sa, f"{ft.kind.label} {ft.id}")
    return finish(work)


def cancel_financial_transaction(view: CcbView, ids: IdSource, admin: AdminConfig,
                                 command: CancelFinancialTransaction, today: dt.date,
                                 now: dt.datetime) -> Changes:
    work = Work(view, ids, admin, today, now, command.user)
    ft = work.financial_transaction(command.ft_id)
    if ft is None:
        raise NotFound("financial transaction", command.ft_id, "ft_id")
    sa = require_sa(work, ft.sa_id)
    cancel_ft(work, ft, command.reason)
    settle(work, sa, f"cancel of {ft.kind.label} {ft.id}")
    return finish(work)


class SaCancelAlgorithm(Protocol):
    def __call__(self, work: Work, sa: ServiceAgreement) -> None: ...


@registry.implements(Spot.SA_CANCEL_TODO, "C2M-SACA-CRT")
def todo_on_sa_cancel(work: Work, sa: ServiceAgreement) -> None:
    """Step 7.2: billing is told of a canceled SA through a To Do on it."""
    raise_todo(work, work.ids, work.admin, "sa_canceled", DrillKey(kind="sa", id=sa.id),
               f"SA {sa.id} ({sa.sa_type}) of account {sa.account_id} canceled by {work.user}",
               work.now, changes=work.changes)


def cancel_service_agreement(view: CcbView, ids: IdSource, admin: AdminConfig,
                             command: CancelSa, today: dt.date, now: dt.datetime) -> Changes:
    """Steps 7.1-7.2. A landlord pending start reverted for the SA's stop goes with it, a
    landlord pending stop tied to its start is released, and reversion is re-evaluated at
    its SPs."""
    work = Work(view, ids, admin, today, now, command.user)
    sa = require_sa(work, command.sa_id)
    reverted = reverted_sa_of(work, sa)
    canceled = cancel_sa(work, sa, "cancel SA")
    if reverted is not None and reverted.status is SaStatus.PENDING_START:
        cancel_start(work, reverted, f"SA {sa.id} canceled")
    if sa.status is SaStatus.PENDING_START:
        release_landlord_stops(work, canceled)
    reevaluate_reversion(work, sp_ids_of(work, [sa]))
    code = admin.algorithms.sa_cancel_todo
    if code is not None:
        cast(SaCancelAlgorithm, registry.get(Spot.SA_CANCEL_TODO, code))(work, canceled)
    return finish(work)


def reinstate_service_agreement(view: CcbView, ids: IdSource, admin: AdminConfig,
                                command: ReinstateSa, today: dt.date,
                                now: dt.datetime) -> Changes:
    """Steps 7.6-7.9. The tenant keeps its service, so a landlord pending start reverted for
    its stop is canceled (a landlord SA already active must be stopped first: the SP check
    refuses two SAs serving it). The account has service again, so its final-bill flag
    (step 4.0) is cleared; the deposit, collection and budget are left for the user."""
    work = Work(view, ids, admin, today, now, command.user)
    sa = require_sa(work, command.sa_id)
    reverted = reverted_sa_of(work, sa)
    reinstate(work, sa, "reinstate")
    if reverted is not None and reverted.status is SaStatus.PENDING_START:
        cancel_start(work, reverted, f"SA {sa.id} reinstated")
    account = work.account(sa.account_id)
    if account is not None and account.final_bill_pending:
        work.save_account(account.model_copy(update={"final_bill_pending": False}))
        work.note(f"account {account.id} final bill no longer pending")
    return finish(work)

