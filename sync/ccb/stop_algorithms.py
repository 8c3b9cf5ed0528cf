"""SA type stop algorithms (plug-in spot ``sa_stop``): what an SA type adds to the stop
consequences when one of its SAs reaches stopped (40). Admin data lists them per SA type
(``sa_types.<code>.stop_algorithms``); they run in that order, first among the consequences.
"""

from __future__ import annotations

from collections.abc import Callable

from sync.algorithms import Spot, registry
from sync.ccb.finance import ZERO, frozen, money, new_ft
from sync.ccb.lifecycle import record
from sync.ccb.model import FtKind, ProcessStatus, ServiceAgreement
from sync.ccb.work import Work

StopAlgorithm = Callable[[Work, ServiceAgreement], None]
CONSEQUENCE = "stop consequence"


def run_stop_algorithms(work: Work, sa: ServiceAgreement) -> None:
    sa_type = work.admin.sa_types.get(sa.sa_type)
    for code in sa_type.stop_algorithms if sa_type is not None else ():
        algorithm: StopAlgorithm = registry.get(Spot.SA_STOP, code)
        algorithm(work, sa)


@registry.implements(Spot.SA_STOP, "NB-SAST")
def leave_non_billed_budget(work: Work, sa: ServiceAgreement) -> None:
    """Steps 3.5-3.6: the stopped SA leaves the non-billed budgets covering it; a budget that
    covers no SA any more expires."""
    for budget in work.budgets_of_account(sa.account_id):
        if not budget.non_billed or budget.status is not ProcessStatus.ACTIVE \
                or sa.id not in budget.sa_ids:
            continue
        remaining = tuple(sa_id for sa_id in budget.sa_ids if sa_id != sa.id)
        status = ProcessStatus.ACTIVE if remaining else ProcessStatus.EXPIRED
        work.save_budget(budget.model_copy(update={"sa_ids": remaining, "status": status}))
        line = f"SA {sa.id} removed from non-billed budget {budget.id}"
        if status is ProcessStatus.EXPIRED:
            line += "; the budget covers no SA any more and expired"
        record(work, sa, CONSEQUENCE, line)


@registry.implements(Spot.SA_STOP, "C2M-SAST-RF")
def refund_service_credit_fee(work: Work, sa: ServiceAgreement) -> None:
    """Refund what is left of a service credit membership fee on the stopped SA: for each
    adjustment type that ``refunds`` a fee type, a credit adjustment of that type equal to the
    frozen fees less what was already refunded (nothing when nothing is left)."""
    fts = [ft for ft in frozen(work.financial_transactions_of_sa(sa.id))
           if ft.kind is FtKind.ADJUSTMENT]
    for code, refund_type in sorted(work.admin.adjustment_types.items()):
        if refund_type.refunds is None:
            continue
        fees = sum((ft.amount for ft in fts if ft.adjustment_type == refund_type.refunds), ZERO)
        refunded = sum((ft.amount for ft in fts if ft.adjustment_type == code), ZERO)
        due = fees + refunded  # refunds are negative
        if due > ZERO:
            ft = new_ft(work, sa, FtKind.ADJUSTMENT, -due, adjustment_type=code)
            record(work, sa, CONSEQUENCE, f"SA {sa.id}: {refund_type.refunds} fee of"
                                          f" {money(due)} refunded by credit adjustment {ft.id}")
