"""``POST /api/commands/...``: the CCB commands a CSR runs, one unit of work each (the same
domain command and store path as ``c2m-sync ccb ...``); each answers what it changed."""

from __future__ import annotations

from fastapi import APIRouter

from sync.api import command_models as m
from sync.api.deps import RuntimeDep, run_command
from sync.api.models import ChangesOut
from sync.api.problems import responses
from sync.api.security import Write
from sync.ccb import commands as cmd

router = APIRouter(prefix="/api/commands", tags=["commands"], dependencies=[Write],
                   responses=responses(401, 404, 409, 422))


@router.post("/request-stop", summary="Request stop of an account's service (1.1-1.9)")
def request_stop(body: m.RequestStopIn, runtime: RuntimeDep) -> ChangesOut:
    return run_command(runtime, body.command())


@router.post("/start-service", summary="Start service for an account")
def start_service(body: m.StartServiceIn, runtime: RuntimeDep) -> ChangesOut:
    return run_command(runtime, body.command())


@router.post("/change-stop-date", summary="Move a pending stop (2.4-2.7, 4.9-5.3)")
def change_stop_date(body: m.ChangeStopDateIn, runtime: RuntimeDep) -> ChangesOut:
    return run_command(runtime, body.command())


@router.post("/change-start-date", summary="Move a pending start (2.6-2.7, 5.1-5.2)")
def change_start_date(body: m.ChangeStartDateIn, runtime: RuntimeDep) -> ChangesOut:
    return run_command(runtime, body.command())


@router.post("/cancel-stop", summary="Cancel a pending stop (3.0-3.1, 5.4-5.8)")
def cancel_stop(body: m.CancelStopIn, runtime: RuntimeDep) -> ChangesOut:
    return run_command(runtime, body.command())


@router.post("/cancel-start", summary="Cancel a pending start (2.8-2.9)")
def cancel_start(body: m.CancelStartIn, runtime: RuntimeDep) -> ChangesOut:
    return run_command(runtime, body.command())


@router.post("/activate", summary="Activate a pending start now (exception processing)")
def activate(body: m.SaActionIn, runtime: RuntimeDep) -> ChangesOut:
    return run_command(runtime, cmd.ActivateSa(sa_id=body.sa_id, user=body.user))


@router.post("/stop", summary="Stop a pending stop now (3.2-3.3)")
def stop(body: m.SaActionIn, runtime: RuntimeDep) -> ChangesOut:
    return run_command(runtime, cmd.StopSa(sa_id=body.sa_id, user=body.user))


@router.post("/cancel-sa", summary="Cancel an SA once every FT is canceled (7.1-7.2)")
def cancel_sa(body: m.SaActionIn, runtime: RuntimeDep) -> ChangesOut:
    return run_command(runtime, cmd.CancelSa(sa_id=body.sa_id, user=body.user))


@router.post("/reinstate", summary="Reinstate a stopped, reactivated or closed SA (7.6-7.9)")
def reinstate(body: m.SaActionIn, runtime: RuntimeDep) -> ChangesOut:
    return run_command(runtime, cmd.ReinstateSa(sa_id=body.sa_id, user=body.user))


@router.post("/complete-field-activity", summary="Complete a field activity with its read")
def complete_field_activity(body: m.CompleteFieldActivityIn,
                            runtime: RuntimeDep) -> ChangesOut:
    return run_command(runtime, body.command())


@router.post("/add-financial-transaction",
             summary="Freeze a bill segment, payment or adjustment on an SA (7.3-7.5)")
def add_financial_transaction(body: m.AddFinancialTransactionIn,
                              runtime: RuntimeDep) -> ChangesOut:
    return run_command(runtime, body.command())


@router.post("/cancel-financial-transaction", summary="Cancel an FT with a reason (6.7-7.0)")
def cancel_financial_transaction(body: m.CancelFinancialTransactionIn,
                                 runtime: RuntimeDep) -> ChangesOut:
    return run_command(runtime, body.command())


@router.post("/assign-landlord-agreement",
             summary="Assign a landlord agreement to premises (null removes it)")
def assign_landlord_agreement(body: m.AssignLandlordAgreementIn,
                              runtime: RuntimeDep) -> ChangesOut:
    return run_command(runtime, body.command())


@router.post("/group-premises", summary="Put premises under a parent premise")
def group_premises(body: m.GroupPremisesIn, runtime: RuntimeDep) -> ChangesOut:
    return run_command(runtime, body.command())


@router.post("/stop-at-child-premises",
             summary="Stop an account's service at every child premise of a parent")
def stop_at_child_premises(body: m.StopAtChildPremisesIn, runtime: RuntimeDep) -> ChangesOut:
    return run_command(runtime, body.command())


@router.post("/change-person-details", summary="Change a person's contact details (2.2)")
def change_person_details(body: m.ChangePersonDetailsIn, runtime: RuntimeDep) -> ChangesOut:
    return run_command(runtime, body.command())


@router.post("/change-account-details", summary="Change an account's mailing details (2.2)")
def change_account_details(body: m.ChangeAccountDetailsIn, runtime: RuntimeDep) -> ChangesOut:
    return run_command(runtime, body.command())


@router.post("/set-forwarding-address",
             summary="Set or clear the forwarding address of a pending stop (2.3)")
def set_forwarding_address(body: m.SetForwardingAddressIn, runtime: RuntimeDep) -> ChangesOut:
    return run_command(runtime, body.command())
