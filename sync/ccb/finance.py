"""Financial transactions on an SA and its balance (SPEC.md sections 2 and 4, steps 6.5-7.5).

An FT is a frozen financial effect on one SA: a bill segment, a payment or an adjustment.
``amount`` is what the customer owes because of it (charges positive, payments and credits
negative). The SA balance is the sum of its frozen FTs; a canceled FT stays on record with its
cancel reason but no longer counts. Cancelling is the only change an FT ever undergoes.

This module is the ledger only: which FTs count, the balance, creating and cancelling FTs
(with the ``CMCA-CRDT`` To Do). What the balance does to the SA's status (close, reactivate)
is in :mod:`sync.ccb.lifecycle`, and the CSR commands are in :mod:`sync.ccb.finance_commands`.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Protocol, cast

from sync.algorithms import Spot, registry
from sync.ccb.errors import InvalidCommand
from sync.ccb.model import (
    DrillKey,
    FinancialTransaction,
    FtKind,
    FtStatus,
    ServiceAgreement,
)
from sync.ccb.todo import raise_todo
from sync.ccb.work import Work

ZERO = Decimal("0.00")


def frozen(fts: Iterable[FinancialTransaction]) -> list[FinancialTransaction]:
    """The FTs that count: not canceled."""
    return [ft for ft in fts if ft.status is FtStatus.FROZEN]


def balance(fts: Iterable[FinancialTransaction]) -> Decimal:
    """What the customer owes on the SA: the sum of its frozen FTs."""
    return sum((ft.amount for ft in frozen(fts)), ZERO)


def sa_balance(work: Work, sa_id: str) -> Decimal:
    return balance(work.financial_transactions_of_sa(sa_id))


def closing_bill_segments(fts: Iterable[FinancialTransaction]) -> list[FinancialTransaction]:
    """The frozen bill segments that closed the SA's billing (its final bill)."""
    return [ft for ft in frozen(fts) if ft.kind is FtKind.BILL_SEGMENT
            and ft.closing_bill_segment]


def money(amount: Decimal) -> str:
    return f"{amount:.2f}"


def describe(ft: FinancialTransaction) -> str:
    kind = ft.kind.label + (" (closing)" if ft.closing_bill_segment else "")
    kind += f" {ft.adjustment_type}" if ft.adjustment_type else ""
    return f"{kind} {ft.id} of {money(ft.amount)}"


def check_cancel_reason(work: Work, ft_id: str, reason: str) -> None:
    if reason not in work.admin.ft_cancel_reasons:
        known = ", ".join(sorted(work.admin.ft_cancel_reasons)) or "none configured"
        raise InvalidCommand("financial transaction", ft_id, "cancel_reason",
                             f"unknown cancel reason {reason!r} (ft_cancel_reasons: {known})")


def check_adjustment_type(work: Work, sa_id: str, kind: FtKind,
                          adjustment_type: str | None) -> None:
    if kind is FtKind.ADJUSTMENT:
        if adjustment_type is None:
            raise InvalidCommand("SA", sa_id, "adjustment_type",
                                 "an adjustment needs an adjustment type")
        if adjustment_type not in work.admin.adjustment_types:
            known = ", ".join(sorted(work.admin.adjustment_types)) or "none configured"
            raise InvalidCommand("SA", sa_id, "adjustment_type",
                                 f"unknown adjustment type {adjustment_type!r}"
                                 f" (adjustment_types: {known})")
    elif adjustment_type is not None:
        raise InvalidCommand("SA", sa_id, "adjustment_type",
                             f"only an adjustment has an adjustment type, not a {kind.label}")


def new_ft(work: Work, sa: ServiceAgreement, kind: FtKind, amount: Decimal, *,
           closing_bill_segment: bool = False,
           adjustment_type: str | None = None) -> FinancialTransaction:
    """A frozen FT on the SA, dated the business date (validated, saved and noted)."""
    check_adjustment_type(work, sa.id, kind, adjustment_type)
    if closing_bill_segment and kind is not FtKind.BILL_SEGMENT:
        raise InvalidCommand("SA", sa.id, "closing_bill_segment",
                             f"only a bill segment can close the SA, not a {kind.label}")
    if kind is FtKind.PAYMENT and amount >= ZERO:
        raise InvalidCommand("SA", sa.id, "amount",
                             f"a payment lowers the balance: give it as a negative amount,"
                             f" not {money(amount)}")
    if kind is FtKind.ADJUSTMENT and amount == ZERO:
        raise InvalidCommand("SA", sa.id, "amount", "an adjustment of 0.00 changes nothing")
    ft = work.save_financial_transaction(FinancialTransaction(
        id=work.new_id("FT"), sa_id=sa.id, kind=kind, amount=amount,
        accounting_date=work.today, closing_bill_segment=closing_bill_segment,
        adjustment_type=adjustment_type))
    work.note(f"SA {sa.id}: {describe(ft)} frozen; balance {money(sa_balance(work, sa.id))}")
    return ft


def cancel_ft(work: Work, ft: FinancialTransaction, reason: str) -> FinancialTransaction:
    """Cancel a frozen FT with a reason (steps 6.7-7.0); a canceled credit adjustment raises
    a To Do when the installation runs ``CMCA-CRDT``."""
    if ft.status is FtStatus.CANCELED:
        when = ft.canceled_on.isoformat() if ft.canceled_on else "earlier"
        raise InvalidCommand("financial transaction", ft.id, "status",
                             f"already canceled on {when} (reason {ft.cancel_reason})")
    check_cancel_reason(work, ft.id, reason)
    canceled = work.save_financial_transaction(ft.model_copy(update={
        "status": FtStatus.CANCELED, "cancel_reason": reason, "canceled_on": work.today}))
    work.note(f"SA {ft.sa_id}: {describe(ft)} canceled ({reason}); balance"
              f" {money(sa_balance(work, ft.sa_id))}")
    code = work.admin.algorithms.adjustment_cancel_todo
    if ft.kind is FtKind.ADJUSTMENT and code is not None:
        algorithm = cast(AdjustmentCancelAlgorithm,
                         registry.get(Spot.ADJUSTMENT_CANCEL_TODO, code))
        algorithm(work, canceled)
    return canceled


class AdjustmentCancelAlgorithm(Protocol):
    def __call__(self, work: Work, ft: FinancialTransaction) -> None: ...


@registry.implements(Spot.ADJUSTMENT_CANCEL_TODO, "CMCA-CRDT")
def todo_on_credit_cancel(work: Work, ft: FinancialTransaction) -> None:
    """Step 6.8: cancelling a credit (a negative adjustment) raises the customer's balance, so
    billing is told through a To Do on the SA (one open entry per SA)."""
    if ft.amount >= ZERO:
        return
    raise_todo(work, work.ids, work.admin, "adjustment_canceled",
               DrillKey(kind="sa", id=ft.sa_id),
               f"credit adjustment {ft.id} ({ft.adjustment_type}) of {money(ft.amount)} on SA"
               f" {ft.sa_id} canceled: {ft.cancel_reason}", work.now, changes=work.changes)
