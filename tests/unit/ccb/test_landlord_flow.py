"""The landlord's own flow (steps 1.0–3.1 for the landlord): the reverted service is stopped by
the system when a new tenant starts; its pending stop moves with the new tenant's start; a
canceled new-tenant start takes the landlord's pending stop with it."""

from __future__ import annotations

import pytest

from sync.ccb.alerts import PendingStopAlert, account_alerts
from sync.ccb.commands import (
    ActivateSa,
    CancelPendingStart,
    CancelPendingStop,
    ChangeStartDate,
    ChangeStopDate,
    RequestStop,
    StartService,
    StopSa,
)
from sync.ccb.errors import InvalidCommand
from sync.ccb.model import SaStatus, ServiceAgreement

from .world import LANDLORD, NEW_TENANT, PREMISE, TENANT, TENANT_E, World, day, no_fieldwork_admin


def landlord_in_charge() -> tuple[World, ServiceAgreement]:
    """The tenant left on day 1; the landlord's reverted service is active."""
    world = World(no_fieldwork_admin())
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_E,), stop_date=day(1)))
    world.run(StopSa(sa_id=TENANT_E), today=day(1))
    (landlord_sa,) = world.landlord_sas()
    world.run(ActivateSa(sa_id=landlord_sa.id), today=day(1))
    return world, world.sa(landlord_sa.id)


def start_new_tenant(world: World, offset: int) -> str:
    changes = world.run(StartService(account_id=NEW_TENANT, sa_type="E-RES",
                                     premise_id=PREMISE, start_date=day(offset)))
    (sa_id,) = [sa.id for sa in changes.sas.values() if sa.account_id == NEW_TENANT]
    return sa_id


def test_step_1_1_to_1_3_new_tenant_start_puts_the_landlord_in_pending_stop() -> None:
    world, landlord_sa = landlord_in_charge()
    assert landlord_sa.status is SaStatus.ACTIVE
    new_sa = start_new_tenant(world, 20)
    stopped = world.sa(landlord_sa.id)
    assert (stopped.status, stopped.end_date) == (SaStatus.PENDING_STOP, day(20))
    assert stopped.stopped_by is not None
    assert (stopped.stopped_by.kind, stopped.stopped_by.reciprocal_sa_id) == ("system", new_sa)
    assert [link.stop_date for link in world.links(landlord_sa.id)] == [day(20)]
    # 1.3: the landlord's dashboard shows the pending stop.
    assert PendingStopAlert(landlord_sa.id, "E-RES", day(20), PREMISE) in account_alerts(
        world.store, LANDLORD)


def test_step_2_4_2_5_landlord_changes_own_pending_stop_date() -> None:
    world, landlord_sa = landlord_in_charge()
    world.run(RequestStop(account_id=LANDLORD, sa_ids=(landlord_sa.id,), stop_date=day(30)))
    world.run(ChangeStopDate(sa_id=landlord_sa.id, stop_date=day(40)))
    assert world.sa(landlord_sa.id).end_date == day(40)
    assert world.sa(landlord_sa.id).status is SaStatus.PENDING_STOP


def test_step_2_6_2_7_landlord_stop_date_change_moves_the_new_tenant_start() -> None:
    world, landlord_sa = landlord_in_charge()
    new_sa = start_new_tenant(world, 20)
    world.run(ChangeStopDate(sa_id=landlord_sa.id, stop_date=day(25), move_next_start=False))
    assert world.sa(landlord_sa.id).end_date == day(25)
    # The system tied the landlord's stop to this start: it always follows.
    assert world.sa(new_sa).start_date == day(25)
    assert [link.start_date for link in world.links(new_sa)] == [day(25)]


def test_step_2_6_new_tenant_start_change_moves_the_landlord_stop() -> None:
    world, landlord_sa = landlord_in_charge()
    new_sa = start_new_tenant(world, 20)
    world.run(ChangeStartDate(sa_id=new_sa, start_date=day(15), move_previous_stop=False))
    assert world.sa(landlord_sa.id).end_date == day(15)


def test_step_2_8_2_9_cancel_future_new_tenant_start_cancels_landlord_pending_stop() -> None:
    world, landlord_sa = landlord_in_charge()
    new_sa = start_new_tenant(world, 20)
    world.run(CancelPendingStart(sa_id=new_sa))
    assert world.sa(new_sa).status is SaStatus.CANCELED
    back = world.sa(landlord_sa.id)
    assert (back.status, back.end_date) == (SaStatus.ACTIVE, None)
    assert [link.stop_date for link in world.links(landlord_sa.id)] == [None]


def test_step_3_0_3_1_cancel_landlord_pending_stop_with_the_new_tenant_start() -> None:
    world, landlord_sa = landlord_in_charge()
    new_sa = start_new_tenant(world, 20)
    world.run(CancelPendingStop(sa_id=landlord_sa.id, cancel_next_start=True))
    assert world.sa(landlord_sa.id).status is SaStatus.ACTIVE
    assert world.sa(new_sa).status is SaStatus.CANCELED


def test_step_3_0_cancel_landlord_pending_stop_alone_is_refused_while_a_tenant_starts() -> None:
    world, landlord_sa = landlord_in_charge()
    start_new_tenant(world, 20)
    before = world.store.state()
    with pytest.raises(InvalidCommand, match="would both serve it on"):
        world.run(CancelPendingStop(sa_id=landlord_sa.id))
    assert world.store.state() == before


def test_step_3_0_3_1_cancel_landlord_own_pending_stop() -> None:
    world, landlord_sa = landlord_in_charge()
    world.run(RequestStop(account_id=LANDLORD, sa_ids=(landlord_sa.id,), stop_date=day(30)))
    world.run(CancelPendingStop(sa_id=landlord_sa.id))
    assert world.sa(landlord_sa.id).status is SaStatus.ACTIVE


def test_new_tenant_start_on_the_landlord_start_date_cancels_the_landlord_pending_start() -> None:
    world = World(no_fieldwork_admin())
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_E,), stop_date=day(5)))
    (landlord_sa,) = world.landlord_sas()
    start_new_tenant(world, 5)
    assert world.sa(landlord_sa.id).status is SaStatus.CANCELED


def test_another_customers_open_service_is_never_overridden() -> None:
    world = World()
    before = world.store.state()
    with pytest.raises(InvalidCommand, match="SP 'SP-E' is served by SA 'SA-TE'"):
        start_new_tenant(world, 5)
    assert world.store.state() == before
