"""Dashboard alerts (step 1.3): pending start, pending stop, stopped highlight C1-STOP-SA,
landlord indicator, open To Dos."""

from __future__ import annotations

import datetime as dt

from sync.ccb.alerts import (
    LandlordIndicator,
    OpenToDoAlert,
    PendingStartAlert,
    PendingStopAlert,
    StoppedSaHighlight,
    SyncErrorAlert,
    account_alerts,
    dashboard_alerts,
)
from sync.ccb.changes import Changes
from sync.ccb.commands import RequestStop, StartService
from sync.ccb.model import DrillKey
from sync.ccb.ports import CcbView, IdSource
from sync.ccb.todo import complete_todo, raise_todo, take_todo

from .world import LANDLORD, NEW_TENANT, PREMISE, TENANT, TENANT_E, TENANT_W, World, day

NOW = dt.datetime(2025, 3, 3, 9, 30, tzinfo=dt.UTC)


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


def _raise(world: World, purpose: str, kind: str, target: str, message: str) -> str:
    raised: list[str] = []

    def command(view: CcbView, ids: IdSource) -> Changes:
        result = raise_todo(view, ids, world.admin, purpose, DrillKey(kind=kind, id=target),
                            message, NOW)
        raised.append(result.entry.id)
        return result.changes

    world.store.execute(command)
    return raised[0]


def test_step_1_3_open_to_dos_on_the_account_its_sas_and_their_fas_are_alerts_until_complete(
        ) -> None:
    """SPEC's alert list names open To Dos: every To Do not yet complete on the account, one
    of its SAs or their field activities, beside (not instead of) the sync error alert."""
    world = World()
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_E,), stop_date=day(10)))
    [fa] = world.fas(TENANT_E)
    on_sa = _raise(world, "old_pending", "sa", TENANT_E, "pending stop for 40 days")
    on_fa = _raise(world, "fa_near_read", "fa", fa.id, "no usable pair of reads")
    on_account = _raise(world, "adjustment_canceled", "account", TENANT, "credit canceled")
    sync_error = _raise(world, "sync_error", "sa", TENANT_E, "MDM rejected it")
    elsewhere = _raise(world, "old_pending", "sa", "SA-OF-ANOTHER-ACCOUNT", "not this one")

    alerts = dashboard_alerts(world.store, world.admin, TENANT)
    todo_alerts = [alert for alert in alerts if isinstance(alert, OpenToDoAlert)]
    assert [(a.todo_id, a.todo_type, a.drill_kind, a.drill_id, a.status) for a in todo_alerts
            ] == [(on_account, "TD-ADJCAN", "account", TENANT, "open"),
                  (on_sa, "TD-SSFTL", "sa", TENANT_E, "open"),
                  (on_fa, "TD-FANR", "fa", fa.id, "open")]
    assert todo_alerts[1].text == (f"Open To Do {on_sa} (TD-SSFTL, open) on SA {TENANT_E}: "
                                   "pending stop for 40 days")
    assert SyncErrorAlert(TENANT_E, sync_error, "TD-SYNCER") in alerts  # shown once, as such
    assert elsewhere not in {a.todo_id for a in todo_alerts}

    world.store.execute(lambda view, _ids: take_todo(view, world.admin, on_sa, "csr1", NOW))
    world.store.execute(lambda view, _ids: complete_todo(view, world.admin, on_fa, "dispatch1",
                                                                 NOW))
    after = [(a.todo_id, a.status) for a in dashboard_alerts(world.store, world.admin, TENANT)
             if isinstance(a, OpenToDoAlert)]
    assert after == [(on_account, "open"), (on_sa, "being_worked")]  # completed: gone
