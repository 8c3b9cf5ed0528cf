"""Bad input: unknown SA/account/premise, stop before start, back-dated beyond the limit, wrong
status — each a clear error naming the entity and field, with the state unchanged."""

from __future__ import annotations

import math

import pytest

from sync.ccb.commands import (
    ActivateSa,
    AssignLandlordAgreement,
    CancelPendingStart,
    CancelPendingStop,
    ChangeStartDate,
    ChangeStopDate,
    Command,
    CompleteFieldActivity,
    GroupPremises,
    RequestStop,
    StartService,
    StopAtChildPremises,
    StopSa,
)
from sync.ccb.errors import CcbError, InvalidCommand, InvalidTransition, NotFound

from .world import PREMISE, SP_W, TENANT, TENANT_E, TENANT_W, World, day

CASES: list[tuple[str, Command, type[CcbError], str]] = [
    ("unknown account", RequestStop(account_id="A-404", sa_ids=(TENANT_E,), stop_date=day(5)),
     NotFound, "account 'A-404' not found (account_id)"),
    ("unknown SA", RequestStop(account_id=TENANT, sa_ids=("SA-404",), stop_date=day(5)),
     NotFound, "SA 'SA-404' not found (sa_id)"),
    ("unknown premise", RequestStop(account_id=TENANT, premise_id="PR-404", stop_date=day(5)),
     NotFound, "premise 'PR-404' not found (premise_id)"),
    ("nothing named", RequestStop(account_id=TENANT, stop_date=day(5)),
     InvalidCommand, "account 'A-T': sa_ids: name the SAs or a premise to stop"),
    ("SA of another account", RequestStop(account_id="A-N", sa_ids=(TENANT_E,),
                                          stop_date=day(5)),
     InvalidCommand, "SA 'SA-TE': account_id: belongs to account 'A-T', not 'A-N'"),
    ("stop before start", RequestStop(account_id=TENANT, sa_ids=(TENANT_E,),
                                      stop_date=day(-800)),
     InvalidCommand, "SA 'SA-TE': stop_date: 2022-12-24 is before the start date 2024-01-01"),
    ("back-dated beyond the limit", RequestStop(account_id=TENANT, sa_ids=(TENANT_E,),
                                                stop_date=day(-61)),
     InvalidCommand, "SA 'SA-TE': stop_date: 2025-01-01 is back-dated more than 60 days"),
    ("wrong status: change stop of an active SA", ChangeStopDate(sa_id=TENANT_E,
                                                                 stop_date=day(5)),
     InvalidTransition, "SA 'SA-TE' in status 20 (active) cannot change stop date"),
    ("wrong status: cancel start of an active SA", CancelPendingStart(sa_id=TENANT_E),
     InvalidTransition, "SA 'SA-TE' in status 20 (active) cannot cancel pending start"),
    ("wrong status: cancel stop of an active SA", CancelPendingStop(sa_id=TENANT_E),
     InvalidTransition, "SA 'SA-TE' in status 20 (active) cannot cancel pending stop"),
    ("wrong status: change start of an active SA", ChangeStartDate(sa_id=TENANT_E,
                                                                   start_date=day(5)),
     InvalidTransition, "SA 'SA-TE' in status 20 (active) cannot change start date"),
    ("wrong status: activate an active SA", ActivateSa(sa_id=TENANT_E),
     InvalidTransition, "SA 'SA-TE' in status 20 (active) cannot activate"),
    ("wrong status: stop an active SA", StopSa(sa_id=TENANT_E),
     InvalidTransition, "SA 'SA-TE' in status 20 (active) cannot stop"),
    ("unknown SA type", StartService(account_id=TENANT, sa_type="X-RES", premise_id=PREMISE,
                                     start_date=day(5)),
     InvalidCommand, "account 'A-T': sa_type: unknown SA type 'X-RES'"),
    ("premise-based type without premise", StartService(account_id=TENANT, sa_type="E-RES",
                                                        start_date=day(5)),
     InvalidCommand, "account 'A-T': premise_id: SA type 'E-RES' is premise based"),
    ("SP of the wrong service type", StartService(account_id="A-N", sa_type="E-RES",
                                                  premise_id=PREMISE, sp_ids=(SP_W,),
                                                  start_date=day(5)),
     InvalidCommand, "service point 'SP-W': sp_type: 'W-RES' is not of service type 'E'"),
    ("start back-dated", StartService(account_id="A-N", sa_type="G-RES", premise_id=PREMISE,
                                      start_date=day(-90)),
     InvalidCommand, "SA '(new)': start_date: 2024-12-03 is back-dated more than 60 days"),
    ("unknown FA", CompleteFieldActivity(fa_id="FA-404", read_value=1.0),
     NotFound, "FA 'FA-404' not found (fa_id)"),
    ("unknown agreement", AssignLandlordAgreement(agreement_id="LA-404",
                                                  premise_ids=(PREMISE,)),
     NotFound, "landlord agreement 'LA-404' not found (agreement_id)"),
    ("premise under itself", GroupPremises(parent_premise_id=PREMISE, premise_ids=(PREMISE,)),
     InvalidCommand, "premise 'PR-1': parent_premise_id: cannot be placed under 'PR-1'"),
    ("no child premises", StopAtChildPremises(account_id=TENANT, parent_premise_id=PREMISE,
                                              stop_date=day(5)),
     InvalidCommand, "premise 'PR-1': child premises: account 'A-T' has no active service"),
    ("bad contact method", RequestStop(account_id=TENANT, sa_ids=(TENANT_W,), stop_date=day(5),
                                       contact_method="pigeon"),
     InvalidCommand, "contact '(new)': method: unknown method 'pigeon'"),
]


@pytest.mark.parametrize(("case", "command", "error", "message"), CASES,
                         ids=[case[0] for case in CASES])
def test_bad_input_is_a_clear_error_and_changes_nothing(
        case: str, command: Command, error: type[CcbError], message: str) -> None:
    world = World()
    before = world.store.state()
    changes_before = list(world.store.entity_changes)
    with pytest.raises(error) as raised:
        world.run(command)
    assert str(raised.value).startswith(message), case
    assert world.store.state() == before
    assert world.store.entity_changes == changes_before


def test_a_failure_after_partial_work_leaves_nothing_behind() -> None:
    """Request stop of two SAs where the second is wrong: the first is not stopped either."""
    world = World()
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_W,), stop_date=day(5)))
    before = world.store.state()
    with pytest.raises(InvalidTransition, match="SA 'SA-TW' in status 30"):
        world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_E, TENANT_W),
                              stop_date=day(5)))
    assert world.store.state() == before




@pytest.mark.parametrize("read", [math.inf, -math.inf, math.nan])
def test_step_1_6_a_read_that_is_not_finite_does_not_complete_an_fa(read: float) -> None:
    """NaN would pass the negative-read check and infinity would be stored as a meter read."""
    world = World()
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_E,), stop_date=day(5)))
    (fa,) = world.fas(TENANT_E)
    before = world.store.state()
    with pytest.raises(InvalidCommand) as raised:
        world.run(CompleteFieldActivity(fa_id=fa.id, read_value=read))
    assert str(raised.value) == (f"FA {fa.id!r}: completion_read: {read} is not a finite"
                                 " number")
    assert world.store.state() == before


def test_a_second_cancel_of_a_canceled_start_is_rejected() -> None:
    world = World()
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_E,), stop_date=day(5)))
    (landlord_sa,) = world.landlord_sas()
    world.run(CancelPendingStop(sa_id=TENANT_E))
    with pytest.raises(InvalidTransition, match=r"status 70 \(canceled\) cannot cancel pending"):
        world.run(CancelPendingStart(sa_id=landlord_sa.id))


def test_landlord_reversion_start_cannot_be_moved_or_canceled_directly() -> None:
    world = World()
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_E,), stop_date=day(5)))
    (landlord_sa,) = world.landlord_sas()
    with pytest.raises(InvalidCommand, match="change the stop of SA 'SA-TE' instead"):
        world.run(ChangeStartDate(sa_id=landlord_sa.id, start_date=day(6)))
    with pytest.raises(InvalidCommand, match="change the stop of SA 'SA-TE' instead"):
        world.run(CancelPendingStart(sa_id=landlord_sa.id))
