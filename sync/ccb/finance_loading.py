"""Master data sections for finance and the processes a stop ends (see
:mod:`sync.ccb.loading` for the file format)::

    financial_transactions: [{id, sa_id, kind, amount, accounting_date, status,
                              closing_bill_segment, adjustment_type, cancel_reason, canceled_on}]
    budgets:                [{id, account_id, non_billed, sa_ids, status}]
    collection_processes:   [{id, account_id, sa_ids, status}]
    severance_processes:    [{id, sa_id, events: [{event_type, status}], status}]

The shape of each record is checked with the others (:mod:`sync.ccb.loading_checks`); here
are the references (SAs, accounts, and that a covered SA belongs to the budget's or process's
account) and the admin codes (adjustment types, FT cancel reasons).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sync.ccb.model import FtKind, FtStatus

if TYPE_CHECKING:
    from sync.ccb.loading_checks import _Checker

FINANCE_SECTIONS = ("financial_transactions", "budgets", "collection_processes",
                    "severance_processes")


def check_finance_references(checker: _Checker) -> None:
    data = checker.data
    admin = checker.admin
    for ft in data.financial_transactions:
        where = ("financial_transactions", checker.position("financial_transactions", ft.id),
                 ft.id)
        checker.refer(where, "sa_id", "service_agreements", ft.sa_id, "SA")
        if ft.kind is FtKind.ADJUSTMENT and ft.adjustment_type not in admin.adjustment_types:
            checker.problem(*where, "adjustment_type",
                            f"unknown adjustment type {ft.adjustment_type!r} "
                            f"(admin data: {', '.join(admin.adjustment_types)})")
        if ft.kind is not FtKind.ADJUSTMENT and ft.adjustment_type is not None:
            checker.problem(*where, "adjustment_type", f"a {ft.kind.label} has none")
        if ft.closing_bill_segment and ft.kind is not FtKind.BILL_SEGMENT:
            checker.problem(*where, "closing_bill_segment",
                            f"only a bill segment closes an SA, not a {ft.kind.label}")
        _check_cancel(checker, where, ft.status, ft.cancel_reason, ft.canceled_on)
    for section in ("budgets", "collection_processes"):
        for covering in getattr(data, section):
            _check_covered_sas(checker, section, covering)
    for process in data.severance_processes:
        where = ("severance_processes",
                 checker.position("severance_processes", process.id), process.id)
        checker.refer(where, "sa_id", "service_agreements", process.sa_id, "SA")


def _check_cancel(checker: _Checker, where: tuple[str, int, str], status: FtStatus,
                  reason: str | None, canceled_on: object) -> None:
    if status is FtStatus.CANCELED:
        if reason is None or canceled_on is None:
            checker.problem(*where, "cancel_reason" if reason is None else "canceled_on",
                            "a canceled FT needs a cancel reason and a cancel date")
        elif reason not in checker.admin.ft_cancel_reasons:
            checker.problem(*where, "cancel_reason",
                            f"unknown cancel reason {reason!r} "
                            f"(admin data: {', '.join(checker.admin.ft_cancel_reasons)})")
    elif reason is not None or canceled_on is not None:
        checker.problem(*where, "status", "a frozen FT has no cancel reason nor cancel date")


def _check_covered_sas(checker: _Checker, section: str, covering: Any) -> None:
    """A budget or collection process covers SAs of its own account only."""
    where = (section, checker.position(section, covering.id), covering.id)
    checker.refer(where, "account_id", "accounts", covering.account_id, "account")
    for position, sa_id in enumerate(covering.sa_ids):
        sa = checker.refer(where, f"sa_ids[{position}]", "service_agreements", sa_id, "SA")
        if sa is not None and sa.account_id != covering.account_id:
            checker.problem(*where, f"sa_ids[{position}]",
                            f"SA {sa_id!r} belongs to account {sa.account_id!r}, not"
                            f" {covering.account_id!r}")
