"""From a command to the unit of work a store executes (``store.execute(unit_of_work(...))``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sync.ccb import details, finance_commands, premises, stop_start
from sync.ccb.changes import Changes
from sync.ccb.commands import (
    ActivateSa,
    AddFinancialTransaction,
    AssignLandlordAgreement,
    CancelFinancialTransaction,
    CancelPendingStart,
    CancelPendingStop,
    CancelSa,
    ChangeStartDate,
    ChangeStopDate,
    Command,
    CompleteFieldActivity,
    GroupPremises,
    ReinstateSa,
    RequestStop,
    StartService,
    StopAtChildPremises,
    StopSa,
)
from sync.ccb.ports import CcbUnitOfWork, CcbView, IdSource
from sync.config.admin import AdminConfig

HANDLERS: dict[type[Any], Callable[..., Changes]] = {
    RequestStop: stop_start.request_stop,
    StartService: stop_start.start_service,
    ChangeStopDate: stop_start.change_stop_date,
    ChangeStartDate: stop_start.change_start_date,
    CancelPendingStop: stop_start.cancel_pending_stop,
    CancelPendingStart: stop_start.cancel_pending_start,
    ActivateSa: stop_start.activate_sa,
    StopSa: stop_start.stop_sa,
    CompleteFieldActivity: stop_start.complete_fa,
    AssignLandlordAgreement: premises.assign_landlord_agreement,
    GroupPremises: premises.group_premises,
    StopAtChildPremises: premises.stop_at_child_premises,
    details.ChangePersonDetails: details.change_person_details,
    details.ChangeAccountDetails: details.change_account_details,
    details.UpdatePendingStop: details.update_pending_stop,
    AddFinancialTransaction: finance_commands.add_financial_transaction,
    CancelFinancialTransaction: finance_commands.cancel_financial_transaction,
    CancelSa: finance_commands.cancel_service_agreement,
    ReinstateSa: finance_commands.reinstate_service_agreement,
}


def unit_of_work(command: Command | details.DetailsCommand, admin: AdminConfig, today: dt.date,
                 now: dt.datetime) -> CcbUnitOfWork:
    handler = HANDLERS[type(command)]

    def run(view: CcbView, ids: IdSource) -> Changes:
        return handler(view, ids, admin, command, today, now)

    return run
