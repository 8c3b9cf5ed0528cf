"""Dashboard alerts (step 1.3): pending start, pending stop, stopped highlight C1-STOP-SA,
landlord indicator."""

from __future__ import annotations

from sync.ccb.alerts import (
    LandlordIndicator,
    PendingStartAlert,
    PendingStopAlert,
    StoppedSaHighlight,
    account_alerts,
)
from sync.ccb.commands import RequestStop, StartService

from .world import LANDLORD, NEW_TENANT, PREMISE, TENANT, TENANT_E, TENANT_W, World, day


def test_step_1_3_pending_stop_alert_and_landlord_indicator_for_the_tenant() -> None:
    world = World()
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_E,), stop_date=day(10)))
    assert account_alerts(world.store, TENANT) == [
        PendingStopAlert(TENANT_E, "E-RES", day(10), PREMISE),
        LandlordIndicator(PREMISE, "LA-1", LANDLORD, is_landlord=False),
    ]


def test_pending_start_alert_for_the_landlord_who_is_flagged_as_landlord() -> None:
    world = World()
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_E,), stop_date=day(10)))
    (landlord_sa,) = world.landlord_sas()
    alerts = account_alerts(world.store, LANDLORD)
    assert alerts == [PendingStartAlert(landlord_sa.id, "E-RES", day(10), PREMISE),
                      LandlordIndicator(PREMISE, "LA-1", LANDLORD, is_landlord=True)]
    assert alerts[0].text == f"Pending start: SA {landlord_sa.id} (E-RES) on 2025-03-13"


def test_c1_stop_sa_highlights_a_stopped_sa() -> None:
    world = World()
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_W,), stop_date=day(0)))
    alerts = account_alerts(world.store, TENANT)
    assert StoppedSaHighlight(TENANT_W, "W-RES", day(0)) in alerts


def test_no_alerts_for_an_account_with_only_active_service_and_no_landlord() -> None:
    world = World(with_agreement=False)
    assert account_alerts(world.store, TENANT) == []
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_E,), stop_date=day(3)))
    world.run(StartService(account_id=NEW_TENANT, sa_type="E-RES", premise_id=PREMISE,
                           start_date=day(3)))
    assert [type(a).__name__ for a in account_alerts(world.store, NEW_TENANT)] == [
        "PendingStartAlert"]
