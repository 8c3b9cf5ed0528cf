"""``c2m-sync ccb ft ...``, ``ccb cancel-sa`` and ``ccb reinstate``: an SA's financial
transactions and the end of its life (steps 6.5-7.9). Closing and reactivating are not
commands: they follow from the FTs."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TypeAlias

from sync.ccb import commands as cmd
from sync.ccb.errors import NotFound
from sync.ccb.finance import balance, describe, money
from sync.ccb.model import (
    MAX_MONEY,
    MONEY_DIGITS,
    FinancialTransaction,
    FtKind,
    FtStatus,
    ServiceAgreement,
)
from sync.ccb.ports import CcbView
from sync.cli.common import Context, Handler

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
CommandFactory = Callable[..., argparse.ArgumentParser]
DomainHandler = Callable[[Callable[[argparse.Namespace], cmd.Command]], Handler]


def amount(text: str) -> Decimal:
    """A money amount with at most two decimals, e.g. ``-30`` or ``12.50``, within what an
    FT's amount holds (:data:`~sync.ccb.model.MAX_MONEY` either way)."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not an amount: {text!r}") from None
    if value.is_finite() and abs(value) > MAX_MONEY:
        # Checked before rounding to cents: the quantize of an amount with more digits than
        # the decimal context's precision (1e30) raises instead of answering.
        raise argparse.ArgumentTypeError(f"amount {text!r} out of range: at most {MAX_MONEY}"
                                         f" either way ({MONEY_DIGITS} digits, 2 of them"
                                         " decimals)")
    if not value.is_finite() or value != value.quantize(Decimal("0.01")):
        raise argparse.ArgumentTypeError(f"not an amount with at most two decimals: {text!r}")
    return value.quantize(Decimal("0.01"))


def register(sub: Subparsers, command: CommandFactory, domain: DomainHandler) -> None:
    parser = sub.add_parser("ft", help="financial transactions of an SA: add, cancel, list")
    ft_sub = parser.add_subparsers(dest="ft_command", required=True, metavar="ACTION")
    add = command(ft_sub, "add", "freeze a bill segment, payment or adjustment on an SA"
                  " (a stopped SA closes at zero balance after its final bill; a closed one"
                  " is reactivated, 7.3-7.4)",
                  domain(lambda a: cmd.AddFinancialTransaction(
                      sa_id=a.sa, kind=FtKind(a.kind), amount=a.amount,
                      closing_bill_segment=a.closing, adjustment_type=a.adjustment_type,
                      user=a.user)))
    add.add_argument("sa")
    add.add_argument("--kind", required=True, choices=[kind.value for kind in FtKind])
    add.add_argument("--amount", type=amount, required=True,
                     help="what the customer owes because of it (a payment is negative)")
    add.add_argument("--closing", action="store_true",
                     help="a closing bill segment: the SA's final bill")
    add.add_argument("--adjustment-type", help="adjustment type (admin adjustment_types)")
    cancel = command(ft_sub, "cancel", "cancel an FT with a reason (6.7-7.0)",
                     domain(lambda a: cmd.CancelFinancialTransaction(
                         ft_id=a.ft, reason=a.reason, user=a.user)))
    cancel.add_argument("ft")
    cancel.add_argument("--reason", required=True, help="cancel reason (admin ft_cancel_reasons)")
    listing = command(ft_sub, "list", "an SA's financial transactions and balance",
                      _list, with_user=False)
    listing.add_argument("sa")
    command(sub, "cancel-sa", "cancel an SA once every FT is canceled (7.1-7.2)",
            domain(lambda a: cmd.CancelSa(sa_id=a.sa, user=a.user))).add_argument("sa")
    command(sub, "reinstate", "reinstate a stopped, reactivated or closed SA (7.6-7.9)",
            domain(lambda a: cmd.ReinstateSa(sa_id=a.sa, user=a.user))).add_argument("sa")


def _list(context: Context, args: argparse.Namespace) -> int:
    from sync.cli.ccb import open_store  # the group module imports this one

    def read(view: CcbView) -> tuple[ServiceAgreement, list[FinancialTransaction]]:
        sa = view.sa(args.sa)
        if sa is None:
            raise NotFound("SA", args.sa, "sa")
        return sa, sorted(view.financial_transactions_of_sa(args.sa),
                          key=lambda ft: (ft.accounting_date, ft.id))

    store = open_store(context)
    try:
        sa, fts = store.read(read)
    finally:
        store.dispose()
    owed = balance(fts)
    payload = {"sa_id": sa.id, "status": sa.status.value, "balance": money(owed),
               "financial_transactions": [ft.model_dump(mode="json") for ft in fts]}

    def human() -> None:
        print(f"SA {sa.id} ({sa.status.value} {sa.status.label}): balance {money(owed)}")
        for ft in fts:
            state = "" if ft.status is FtStatus.FROZEN else \
                f"  canceled {ft.canceled_on} ({ft.cancel_reason})"
            print(f"  {ft.accounting_date}  {describe(ft)}{state}")

    context.emit(payload, human)
    return 0
