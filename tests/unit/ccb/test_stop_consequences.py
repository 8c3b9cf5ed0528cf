"""Stop consequences (steps 3.3-4.4): what happens when an SA reaches stopped (40), whatever
brought it there."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sync.ccb.changes import Changes
from sync.ccb.commands import RequestStop, StopSa
from sync.ccb.lifecycle import stop
from sync.ccb.model import (
    Budget,
    CollectionProcess,
    FaPurpose,
    FinancialTransaction,
    FtKind,
    ProcessStatus,
    SaStatus,
    SeveranceEvent,
    SeveranceProcess,
)
from sync.ccb.work import Work

from .world import (
    FORWARDING,
    PREMISE,
    SINCE,
    TENANT,
    TENANT_E,
    TENANT_W,
    World,
    day,
    no_fieldwork_admin,
    now_of,
)


def stop_now(world: World, *sa_ids: str) -> Changes:
    """Request the stop today: without fieldwork the immediate-stop algorithm stops at once."""
    changes = world.run(RequestStop(account_id=TENANT, sa_ids=sa_ids, stop_date=day(0),
                                    forwarding_address=FORWARDING))
    for sa_id in sa_ids:
        assert world.sa(sa_id).status is SaStatus.STOPPED, sa_id
    return changes


def consequences_in_audit(world: World, sa_id: str) -> list[str]:
    return [entry.details for entry in world.sa(sa_id).audit
            if entry.action == "stop consequence"]


# --- every path to 40 ------------------------------------------------------------------------


def test_step_3_2_3_3_manual_stop_runs_the_consequences() -> None:
    world = World()
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_E,), stop_date=day(0),
                          forwarding_address=FORWARDING))
    world.complete_fieldwork(TENANT_E, FaPurpose.STOP)
    changes = world.run(StopSa(sa_id=TENANT_E))
    assert world.store.account(TENANT) is not None
    assert world.store.account(TENANT).mailing_address == FORWARDING  # type: ignore[union-attr]
    assert any("mailing address now" in note for note in changes.notes)


def test_step_3_3_immediate_stop_runs_the_consequences() -> None:
    world = World()
    changes = world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_W,), stop_date=day(0),
                                    forwarding_address=FORWARDING))
    assert world.sa(TENANT_W).status is SaStatus.STOPPED
    assert any("mailing address now" in note for note in changes.notes)
    assert consequences_in_audit(world, TENANT_W)


def test_step_3_3_batch_stop_primitive_runs_the_consequences() -> None:
    """The activation batch stops through :func:`sync.ccb.lifecycle.stop`, like the CSR."""
    admin = no_fieldwork_admin().model_copy(update={"algorithms": no_fieldwork_admin()
                                                    .algorithms.model_copy(
                                                        update={"immediate_stop": None})})
    world = World(admin)
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_W,), stop_date=day(0),
                          forwarding_address=FORWARDING))
    assert world.sa(TENANT_W).status is SaStatus.PENDING_STOP

    def batch(view: object, ids: object) -> Changes:
        work = Work(world.store, world.store, admin, day(0), now_of(day(0)), "SAACT")
        stop(work, world.sa(TENANT_W), "activation batch")
        return work.changes

    changes = world.store.execute(batch)  # type: ignore[arg-type]
    assert world.sa(TENANT_W).status is SaStatus.STOPPED
    assert any("mailing address now" in note for note in changes.notes)


# --- 3.4 to 3.9 -----------------------------------------------------------------------------


def test_step_3_4_forwarding_address_applied_to_account_and_main_person() -> None:
    world = World(no_fieldwork_admin())
    stop_now(world, TENANT_W)
    account = world.store.account(TENANT)
    person = world.store.person("P-T")
    assert account is not None
    assert person is not None
    assert (account.mailing_address, person.mailing_address) == (FORWARDING, FORWARDING)
    assert consequences_in_audit(world, TENANT_W) == [
        f"account {TENANT} mailing address now {FORWARDING.one_line()}"]


def test_step_3_5_3_6_non_billed_budget_loses_the_sa_and_expires_when_it_covers_none() -> None:
    """NB-SAST (E-RES and W-RES carry it): the budget keeps covering the SA still in service,
    and expires when its last SA stops."""
    world = World(no_fieldwork_admin())
    world.store.add(Budget(id="NB-1", account_id=TENANT, non_billed=True,
                           sa_ids=(TENANT_E, TENANT_W)))
    changes = stop_now(world, TENANT_W)
    budget = world.store.budgets_of_account(TENANT)[0]
    assert (budget.sa_ids, budget.status) == ((TENANT_E,), ProcessStatus.ACTIVE)
    assert f"SA {TENANT_W} removed from non-billed budget NB-1" in changes.notes
    stop_now(world, TENANT_E)
    budget = world.store.budgets_of_account(TENANT)[0]
    assert (budget.sa_ids, budget.status) == ((), ProcessStatus.EXPIRED)
    assert any("expired" in line for line in consequences_in_audit(world, TENANT_E))


def test_step_3_5_non_billed_budget_untouched_for_an_sa_type_without_nb_sast() -> None:
    world = World(no_fieldwork_admin())
    world.add_active_sa("SA-SURGE", TENANT, "E-SURGE", None, [])
    world.store.add(Budget(id="NB-1", account_id=TENANT, non_billed=True,
                           sa_ids=("SA-SURGE",)))
    stop_now(world, "SA-SURGE")
    assert world.store.budgets_of_account(TENANT)[0].sa_ids == ("SA-SURGE",)


def test_step_3_3_c2m_sast_rf_refunds_what_is_left_of_the_service_credit_fee() -> None:
    """E-RES carries C2M-SAST-RF: fees of 30.00, 10.00 already refunded -> a credit of 20.00."""
    world = World(no_fieldwork_admin())
    for ft_id, amount, adjustment_type in (("FT-F", "30.00", "SVC-FEE"),
                                           ("FT-R", "-10.00", "SVC-FEE-RF"),
                                           ("FT-C", "5.00", "CHARGE")):
        world.store.add(FinancialTransaction(
            id=ft_id, sa_id=TENANT_E, kind=FtKind.ADJUSTMENT, amount=Decimal(amount),
            accounting_date=SINCE, adjustment_type=adjustment_type))
    stop_now(world, TENANT_E)
    (refund,) = [ft for ft in world.store.financial_transactions_of_sa(TENANT_E)
                 if ft.id not in ("FT-F", "FT-R", "FT-C")]
    assert (refund.kind, refund.adjustment_type, refund.amount) == (
        FtKind.ADJUSTMENT, "SVC-FEE-RF", Decimal("-20.00"))
    assert any(f"refunded by credit adjustment {refund.id}" in line
               for line in consequences_in_audit(world, TENANT_E))


def test_step_3_3_c2m_sast_rf_refunds_nothing_when_no_fee_is_left() -> None:
    world = World(no_fieldwork_admin())
    stop_now(world, TENANT_E)
    assert world.store.financial_transactions_of_sa(TENANT_E) == []


def test_step_3_7_severance_process_and_its_events_are_canceled() -> None:
    world = World(no_fieldwork_admin())
    world.store.add(SeveranceProcess(id="SEV-1", sa_id=TENANT_W, events=(
        SeveranceEvent(event_type="notice", status=ProcessStatus.EXPIRED),
        SeveranceEvent(event_type="disconnect"))))
    stop_now(world, TENANT_W)
    (process,) = world.store.severance_processes_of_sa(TENANT_W)
    assert process.status is ProcessStatus.CANCELED
    assert [event.status for event in process.events] == [ProcessStatus.EXPIRED,
                                                          ProcessStatus.CANCELED]
    assert any("severance process SEV-1" in line
               for line in consequences_in_audit(world, TENANT_W))


def test_step_3_8_3_9_sa_leaves_the_collection_process_canceled_when_none_in_service() -> None:
    world = World(no_fieldwork_admin())
    world.store.add(CollectionProcess(id="CP-1", account_id=TENANT,
                                      sa_ids=(TENANT_E, TENANT_W)))
    stop_now(world, TENANT_W)
    (process,) = world.store.collection_processes_of_account(TENANT)
    assert (process.sa_ids, process.status) == ((TENANT_E,), ProcessStatus.ACTIVE)
    stop_now(world, TENANT_E)
    (process,) = world.store.collection_processes_of_account(TENANT)
    assert (process.sa_ids, process.status) == ((), ProcessStatus.CANCELED)
    assert any("the process is canceled" in line
               for line in consequences_in_audit(world, TENANT_E))


# --- 4.0 to 4.4 -------------------------------------------------------------------------------


def test_step_4_0_final_bill_flagged_only_when_the_last_sa_in_service_stops() -> None:
    world = World(no_fieldwork_admin())
    stop_now(world, TENANT_W)
    account = world.store.account(TENANT)
    assert account is not None
    assert not account.final_bill_pending
    changes = stop_now(world, TENANT_E)
    account = world.store.account(TENANT)
    assert account is not None
    assert account.final_bill_pending
    assert f"account {TENANT} final bill pending: bill cycle BC01 bills it at its next run" \
        in changes.notes


def test_step_4_2_budget_canceled_when_the_last_sa_in_service_stops() -> None:
    world = World(no_fieldwork_admin())
    world.store.add(Budget(id="BU-1", account_id=TENANT, sa_ids=(TENANT_E, TENANT_W)))
    stop_now(world, TENANT_W)
    assert world.store.budgets_of_account(TENANT)[0].status is ProcessStatus.ACTIVE
    stop_now(world, TENANT_E)
    assert world.store.budgets_of_account(TENANT)[0].status is ProcessStatus.CANCELED
    assert any("budget BU-1" in line for line in consequences_in_audit(world, TENANT_E))


def test_step_4_1_deposit_sa_goes_to_pending_stop_when_no_other_active_sa_of_its_class() -> None:
    world = World(no_fieldwork_admin())
    world.add_active_sa("SA-DEP", TENANT, "DEP-RES", None, [])
    stop_now(world, TENANT_W)
    assert world.sa("SA-DEP").status is SaStatus.ACTIVE  # electric (class RES) still active
    stop_now(world, TENANT_E)
    deposit = world.sa("SA-DEP")
    assert (deposit.status, deposit.end_date) == (SaStatus.PENDING_STOP, day(0))
    assert deposit.stopped_by is not None
    assert deposit.stopped_by.reason == "deposit refund"
    assert any("deposit SA SA-DEP to pending stop" in line
               for line in consequences_in_audit(world, TENANT_E))


def test_step_4_1_a_pending_start_of_the_deposit_class_keeps_the_deposit() -> None:
    world = World(no_fieldwork_admin())
    world.add_active_sa("SA-DEP", TENANT, "DEP-RES", None, [])
    world.add_active_sa("SA-G", TENANT, "G-RES", PREMISE, [])
    world.store.add(world.sa("SA-G").model_copy(update={"status": SaStatus.PENDING_START,
                                                        "start_date": day(5)}))
    stop_now(world, TENANT_E, TENANT_W)
    assert world.sa("SA-DEP").status is SaStatus.ACTIVE


def test_step_4_3_auto_stop_non_premise_sas_stop_with_the_last_premise_sa() -> None:
    world = World(no_fieldwork_admin())
    world.add_active_sa("SA-SURGE", TENANT, "E-SURGE", None, [])
    stop_now(world, TENANT_W)
    assert world.sa("SA-SURGE").status is SaStatus.ACTIVE  # electric still premise service
    stop_now(world, TENANT_E)
    surge = world.sa("SA-SURGE")
    assert (surge.status, surge.end_date) == (SaStatus.STOPPED, day(0))
    assert [entry.action for entry in surge.audit
            if entry.action != "stop consequence"] == ["request stop", "stop"]
    assert f"non-premise SA SA-SURGE stopped on {day(0).isoformat()} (auto-stop)" in \
        consequences_in_audit(world, TENANT_E)
    # The auto-stopped SA was the last in service: its own consequences flag the final bill.
    account = world.store.account(TENANT)
    assert account is not None
    assert account.final_bill_pending


def test_step_4_4_sub_sa_stops_with_its_master_and_runs_its_own_consequences() -> None:
    world = World(no_fieldwork_admin())
    world.add_active_sa("SA-SUB", TENANT, "W-RES", PREMISE, [], master_sa_id=TENANT_W)
    world.store.add(Budget(id="NB-1", account_id=TENANT, non_billed=True, sa_ids=("SA-SUB",)))
    stop_now(world, TENANT_W)
    assert world.sa("SA-SUB").status is SaStatus.STOPPED
    assert world.store.budgets_of_account(TENANT)[0].status is ProcessStatus.EXPIRED
    assert f"sub SA SA-SUB stopped with master SA {TENANT_W}" in \
        consequences_in_audit(world, TENANT_W)


@pytest.mark.parametrize("sa_id", [TENANT_E, TENANT_W])
def test_consequences_are_recorded_without_breaking_the_audit_chain(sa_id: str) -> None:
    world = World(no_fieldwork_admin())
    stop_now(world, sa_id)
    for entry in world.sa(sa_id).audit:
        if entry.action == "stop consequence":
            assert entry.from_status is entry.to_status is SaStatus.STOPPED
