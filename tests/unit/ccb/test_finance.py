"""Financial transactions and the end of an SA's life (steps 6.5-7.9): balance, FT cancels,
cancel SA, close, reactivate, reinstate."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync.ccb.changes import SA
from sync.ccb.commands import (
    AddFinancialTransaction,
    CancelFinancialTransaction,
    CancelSa,
    ReinstateSa,
    RequestStop,
)
from sync.ccb.errors import InvalidCommand, InvalidTransition, NotFound
from sync.ccb.finance import balance
from sync.ccb.model import (
    DrillKey,
    FinancialTransaction,
    FtKind,
    FtStatus,
    SaStatus,
)
from sync.mapping.snapshots import Delivery, sa_snapshot
from sync.mdm.model import UsStatus, us_status_for

from .world import (
    ADMIN,
    FORWARDING,
    PREMISE,
    SINCE,
    SP_W,
    TENANT,
    TENANT_E,
    TENANT_W,
    World,
    day,
    no_fieldwork_admin,
    now_of,
)

BILL, PAYMENT, ADJUSTMENT = FtKind.BILL_SEGMENT, FtKind.PAYMENT, FtKind.ADJUSTMENT


def stopped_world() -> World:
    world = World(no_fieldwork_admin())
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_W,), stop_date=day(0),
                          forwarding_address=FORWARDING))
    assert world.sa(TENANT_W).status is SaStatus.STOPPED
    return world


def add(world: World, amount: str, kind: FtKind = BILL, sa_id: str = TENANT_W, *,
        closing: bool = False, adjustment_type: str | None = None) -> str:
    changes = world.run(AddFinancialTransaction(
        sa_id=sa_id, kind=kind, amount=Decimal(amount), closing_bill_segment=closing,
        adjustment_type=adjustment_type))
    (ft_id,) = changes.financial_transactions
    return ft_id


def cancel(world: World, ft_id: str, reason: str = "ENTRY-ERROR") -> None:
    world.run(CancelFinancialTransaction(ft_id=ft_id, reason=reason))


def sa_balance(world: World, sa_id: str = TENANT_W) -> Decimal:
    return balance(world.store.financial_transactions_of_sa(sa_id))


def status(world: World, sa_id: str = TENANT_W) -> SaStatus:
    return world.sa(sa_id).status


# --- balance and FT cancels (6.7-7.0) ---------------------------------------------------------


def test_balance_is_the_sum_of_frozen_fts() -> None:
    world = World()
    bill = add(world, "80.00", sa_id=TENANT_E)
    add(world, "-50.00", PAYMENT, sa_id=TENANT_E)
    add(world, "-5.25", ADJUSTMENT, sa_id=TENANT_E, adjustment_type="CREDIT")
    assert sa_balance(world, TENANT_E) == Decimal("24.75")
    cancel(world, bill)
    assert sa_balance(world, TENANT_E) == Decimal("-55.25")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-10_000_00, 10_000_00), st.booleans()), max_size=12))
def test_balance_property_canceled_fts_never_count(rows: list[tuple[int, bool]]) -> None:
    fts = [FinancialTransaction(id=f"FT-{i}", sa_id="SA-1", kind=BILL,
                                amount=Decimal(cents).scaleb(-2), accounting_date=SINCE,
                                status=FtStatus.CANCELED if canceled else FtStatus.FROZEN)
           for i, (cents, canceled) in enumerate(rows)]
    expected = sum((Decimal(cents) for cents, canceled in rows if not canceled), Decimal(0))
    assert balance(fts) == expected.scaleb(-2)


def test_step_6_7_6_8_cancel_of_a_credit_adjustment_updates_the_balance_and_raises_a_todo() -> None:
    """CMCA-CRDT: a canceled credit raises what the customer owes; billing gets a To Do."""
    world = stopped_world()
    credit = add(world, "-15.00", ADJUSTMENT, adjustment_type="CREDIT")
    changes = world.run(CancelFinancialTransaction(ft_id=credit, reason="ENTRY-ERROR"))
    ft = world.store.financial_transaction(credit)
    assert ft is not None
    assert (ft.status, ft.cancel_reason, ft.canceled_on) == (
        FtStatus.CANCELED, "ENTRY-ERROR", day(0))
    assert sa_balance(world) == Decimal("0.00")
    todo = world.store.open_todo("TD-ADJCAN", DrillKey(kind="sa", id=TENANT_W))
    assert todo is not None
    assert todo.role == "BILLING"
    assert credit in todo.message
    assert list(changes.todos) == [todo.id]


def test_step_6_8_no_todo_for_a_charge_or_when_the_algorithm_is_off() -> None:
    world = stopped_world()
    cancel(world, add(world, "15.00", ADJUSTMENT, adjustment_type="CHARGE"))
    assert world.store.open_todo("TD-ADJCAN", DrillKey(kind="sa", id=TENANT_W)) is None
    off = World(ADMIN.model_copy(update={"algorithms": ADMIN.algorithms.model_copy(
        update={"adjustment_cancel_todo": None})}))
    cancel(off, add(off, "-15.00", ADJUSTMENT, TENANT_W, adjustment_type="CREDIT"))
    assert off.store.open_todo("TD-ADJCAN", DrillKey(kind="sa", id=TENANT_W)) is None


def test_step_6_9_7_0_cancel_of_a_bill_segment_and_a_payment_updates_the_balance() -> None:
    world = stopped_world()
    bill = add(world, "40.00")
    payment = add(world, "-25.00", PAYMENT)
    cancel(world, bill, "REBILL")
    assert sa_balance(world) == Decimal("-25.00")
    cancel(world, payment)
    assert sa_balance(world) == Decimal("0.00")


def test_cancel_of_an_already_canceled_ft_is_refused_and_changes_nothing() -> None:
    world = stopped_world()
    bill = add(world, "40.00")
    cancel(world, bill)
    before = world.store.state()
    with pytest.raises(InvalidCommand,
                       match=rf"financial transaction '{bill}': status: already canceled on"
                             rf" {day(0).isoformat()} \(reason ENTRY-ERROR\)"):
        cancel(world, bill, "REBILL")
    assert world.store.state() == before


def test_cancel_of_an_unknown_ft_is_refused() -> None:
    world = stopped_world()
    before = world.store.state()
    with pytest.raises(NotFound, match=r"financial transaction 'FT-404' not found \(ft_id\)"):
        cancel(world, "FT-404")
    assert world.store.state() == before


@pytest.mark.parametrize(("command", "error", "message"), [
    (CancelFinancialTransaction(ft_id="FT-B", reason="BORED"), InvalidCommand,
     r"financial transaction 'FT-B': cancel_reason: unknown cancel reason 'BORED'"),
    (AddFinancialTransaction(sa_id=TENANT_W, kind=PAYMENT, amount=Decimal("20.00")),
     InvalidCommand, r"SA 'SA-TW': amount: a payment lowers the balance"),
    (AddFinancialTransaction(sa_id=TENANT_W, kind=ADJUSTMENT, amount=Decimal("1.00")),
     InvalidCommand, r"SA 'SA-TW': adjustment_type: an adjustment needs an adjustment type"),
    (AddFinancialTransaction(sa_id=TENANT_W, kind=ADJUSTMENT, amount=Decimal("1.00"),
                             adjustment_type="NOPE"),
     InvalidCommand, r"SA 'SA-TW': adjustment_type: unknown adjustment type 'NOPE'"),
    (AddFinancialTransaction(sa_id=TENANT_W, kind=PAYMENT, amount=Decimal("-1.00"),
                             closing_bill_segment=True),
     InvalidCommand, r"closing_bill_segment: only a bill segment can close the SA"),
    (AddFinancialTransaction(sa_id="SA-404", kind=BILL, amount=Decimal("1.00")),
     NotFound, r"SA 'SA-404' not found \(sa_id\)"),
    (AddFinancialTransaction(sa_id=TENANT_E, kind=BILL, amount=Decimal("1.00"),
                             closing_bill_segment=True),
     InvalidTransition, r"SA 'SA-TE' in status 20 \(active\) cannot take a closing bill"
                        r" segment: only a stopped SA gets its final bill"),
])
def test_bad_finance_input_is_refused_naming_what_and_where(
        command: object, error: type[Exception], message: str) -> None:
    world = stopped_world()
    world.store.add(FinancialTransaction(id="FT-B", sa_id=TENANT_W, kind=BILL,
                                         amount=Decimal("3.00"), accounting_date=SINCE))
    before = world.store.state()
    with pytest.raises(error, match=message):
        world.run(command)  # type: ignore[arg-type]
    assert world.store.state() == before


# --- cancel SA (6.5-7.2) ----------------------------------------------------------------------


def test_step_7_1_cancel_sa_refused_while_an_ft_is_not_canceled() -> None:
    world = stopped_world()
    bill = add(world, "40.00")
    before = world.store.state()
    with pytest.raises(InvalidTransition) as refused:
        world.run(CancelSa(sa_id=TENANT_W))
    assert str(refused.value) == (
        f"SA 'SA-TW' in status 40 (stopped) cannot cancel SA: financial transaction {bill}"
        " not canceled; cancel every FT of the SA first")
    assert world.store.state() == before


def test_step_6_6_to_7_2_cancel_every_ft_then_the_sa_with_a_todo() -> None:
    """C2M-SACA-CRT raises a To Do for billing when the SA is canceled."""
    world = stopped_world()
    cancel(world, add(world, "40.00"), "SA-CANCEL")
    cancel(world, add(world, "-40.00", PAYMENT), "SA-CANCEL")
    changes = world.run(CancelSa(sa_id=TENANT_W))
    canceled = world.sa(TENANT_W)
    assert canceled.status is SaStatus.CANCELED
    assert canceled.audit[-1].action == "cancel SA"
    assert (SA, TENANT_W) in changes.changed
    todo = world.store.open_todo("TD-SACAN", DrillKey(kind="sa", id=TENANT_W))
    assert todo is not None
    assert todo.role == "BILLING"


def test_step_7_2_no_todo_when_the_sa_cancel_algorithm_is_off() -> None:
    admin = no_fieldwork_admin()
    world = World(admin.model_copy(update={"algorithms": admin.algorithms.model_copy(
        update={"sa_cancel_todo": None})}))
    world.run(CancelSa(sa_id=TENANT_E))
    assert status(world, TENANT_E) is SaStatus.CANCELED
    assert world.store.open_todo("TD-SACAN", DrillKey(kind="sa", id=TENANT_E)) is None


def test_cancel_sa_of_a_pending_stop_cancels_its_landlord_reversion_start() -> None:
    world = World()
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_E,), stop_date=day(3)))
    (landlord,) = world.landlord_sas(SaStatus.PENDING_START)
    world.run(CancelSa(sa_id=TENANT_E))
    assert status(world, TENANT_E) is SaStatus.CANCELED
    assert status(world, landlord.id) is SaStatus.CANCELED
    assert all(fa.status.value == "canceled" for fa in world.fas(TENANT_E))


def test_no_ft_on_a_canceled_sa() -> None:
    world = stopped_world()
    world.run(CancelSa(sa_id=TENANT_W))
    with pytest.raises(InvalidTransition, match="cannot take a financial transaction: "
                                                "canceled is final"):
        add(world, "1.00")


# --- close and reactivate (7.3-7.5) -----------------------------------------------------------


def test_step_7_3_close_when_the_balance_reaches_zero_after_the_final_bill() -> None:
    world = stopped_world()
    add(world, "-30.00", PAYMENT)  # a payment before the final bill: no close
    assert status(world) is SaStatus.STOPPED
    add(world, "30.00", closing=True)
    closed = world.sa(TENANT_W)
    assert closed.status is SaStatus.CLOSED
    assert (closed.audit[-1].action, closed.audit[-1].details) == (
        "close", "balance zero after the final bill")


def test_step_7_3_no_close_while_a_balance_is_owed() -> None:
    world = stopped_world()
    add(world, "30.00", closing=True)
    assert status(world) is SaStatus.STOPPED
    changes = world.run(AddFinancialTransaction(sa_id=TENANT_W, kind=PAYMENT,
                                                amount=Decimal("-30.00")))
    assert status(world) is SaStatus.CLOSED
    assert f"SA {TENANT_W} closed: balance zero after the final bill" in changes.notes


def test_step_7_4_7_5_new_ft_after_close_reactivates_and_zero_closes_again() -> None:
    world = stopped_world()
    add(world, "30.00", closing=True)
    add(world, "-30.00", PAYMENT)
    assert status(world) is SaStatus.CLOSED
    late = world.run(AddFinancialTransaction(sa_id=TENANT_W, kind=ADJUSTMENT,
                                             amount=Decimal("4.00"), adjustment_type="CHARGE"))
    assert status(world) is SaStatus.REACTIVATED
    assert (SA, TENANT_W) in late.changed
    # Step 7.5: the usage subscription of a reactivated SA is active again.
    message = sa_snapshot(world.store, world.admin, TENANT_W,
                          Delivery(version=1, sync_request_id="SR-1", event_time=now_of(day(0))))
    assert us_status_for(message.sa_status) is UsStatus.ACTIVE
    add(world, "-4.00", PAYMENT)
    assert status(world) is SaStatus.CLOSED
    assert [entry.action for entry in world.sa(TENANT_W).audit][-3:] == [
        "close", "reactivate", "close"]


# --- reinstate (7.6-7.9) ----------------------------------------------------------------------


def test_step_7_7_reinstate_refused_while_a_closing_bill_segment_is_not_canceled() -> None:
    world = stopped_world()
    closing = add(world, "30.00", closing=True)
    before = world.store.state()
    with pytest.raises(InvalidTransition) as refused:
        world.run(ReinstateSa(sa_id=TENANT_W))
    assert str(refused.value) == (f"SA 'SA-TW' in status 40 (stopped) cannot reinstate: closing"
                                  f" bill segment {closing} must be canceled first")
    assert world.store.state() == before


def test_step_7_6_7_8_reinstate_a_stopped_sa_clears_end_and_link_stops() -> None:
    world = stopped_world()
    bill = add(world, "12.00")  # billing history is kept
    changes = world.run(ReinstateSa(sa_id=TENANT_W))
    sa = world.sa(TENANT_W)
    assert (sa.status, sa.end_date, sa.stopped_by) == (SaStatus.ACTIVE, None, None)
    (link,) = world.links(TENANT_W)
    assert (link.sp_id, link.stop_date, link.stop_read) == (SP_W, None, None)
    assert world.store.financial_transaction(bill) is not None
    assert (SA, TENANT_W) in changes.changed
    # The landlord pending start reverted for the stop is canceled with it.
    assert world.landlord_sas(SaStatus.PENDING_START) == []
    assert len(world.landlord_sas(SaStatus.CANCELED)) == 1


def test_step_7_8_reinstate_refused_while_the_landlord_serves_the_sp() -> None:
    world = stopped_world()
    (landlord,) = world.landlord_sas(SaStatus.PENDING_START)
    world.store.add(landlord.model_copy(update={"status": SaStatus.ACTIVE}))
    before = world.store.state()
    with pytest.raises(InvalidCommand, match=rf"service point 'SP-W': sa_sp_links: SA .*"
                                             rf"{landlord.id}.* would both serve it"):
        world.run(ReinstateSa(sa_id=TENANT_W))
    assert world.store.state() == before


def test_step_7_7_reinstate_a_closed_sa_after_canceling_its_closing_bill() -> None:
    """Canceling the closing bill of a closed SA is a financial event: it reactivates the SA
    (60 -> 50), which can then be reinstated (50 -> 20)."""
    world = stopped_world()
    closing = add(world, "30.00", closing=True)
    add(world, "-30.00", PAYMENT)
    assert status(world) is SaStatus.CLOSED
    cancel(world, closing, "REINSTATE")
    assert status(world) is SaStatus.REACTIVATED
    world.run(ReinstateSa(sa_id=TENANT_W))
    assert status(world) is SaStatus.ACTIVE


def test_step_4_0_reinstate_clears_the_final_bill_flag() -> None:
    world = World(no_fieldwork_admin())
    world.run(RequestStop(account_id=TENANT, premise_id=PREMISE, stop_date=day(0)))
    account = world.store.account(TENANT)
    assert account is not None
    assert account.final_bill_pending
    world.run(ReinstateSa(sa_id=TENANT_E))
    account = world.store.account(TENANT)
    assert account is not None
    assert not account.final_bill_pending


def test_step_7_9_sub_sas_after_the_stop_return_to_active_with_their_master() -> None:
    world = World(no_fieldwork_admin())
    world.add_active_sa("SA-SUB", TENANT, "E-SURGE", None, [], master_sa_id=TENANT_W)
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_W,), stop_date=day(0)))
    assert status(world, "SA-SUB") is SaStatus.STOPPED
    world.run(ReinstateSa(sa_id=TENANT_W))
    sub = world.sa("SA-SUB")
    assert (sub.status, sub.end_date) == (SaStatus.ACTIVE, None)
    assert sub.audit[-1].details == f"master SA {TENANT_W} reinstated"


def test_step_7_7_a_sub_sa_with_a_closing_bill_blocks_the_reinstate() -> None:
    world = World(no_fieldwork_admin())
    world.add_active_sa("SA-SUB", TENANT, "E-SURGE", None, [], master_sa_id=TENANT_W)
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_W,), stop_date=day(0)))
    add(world, "9.00", sa_id="SA-SUB", closing=True)
    before = world.store.state()
    with pytest.raises(InvalidTransition, match="sub SA SA-SUB: closing bill segment"):
        world.run(ReinstateSa(sa_id=TENANT_W))
    assert world.store.state() == before


@pytest.mark.parametrize("sa_status", [SaStatus.ACTIVE, SaStatus.PENDING_STOP,
                                       SaStatus.CANCELED, SaStatus.PENDING_START])
def test_reinstate_only_after_the_stop(sa_status: SaStatus) -> None:
    world = World()
    world.store.add(world.sa(TENANT_W).model_copy(update={
        "status": sa_status, "end_date": dt.date(2025, 6, 1)}))
    with pytest.raises(InvalidTransition,
                       match=rf"SA 'SA-TW' in status {sa_status.value} .* cannot reinstate"):
        world.run(ReinstateSa(sa_id=TENANT_W))
