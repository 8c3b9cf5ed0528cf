"""Landlord reversion C2M-LL-REV: every row of the SPEC.md reversion table, seasons, minimum
reversion days, parent premises (steps 4.5, 4.7, 4.8–5.8)."""

from __future__ import annotations

import datetime as dt

import pytest

from sync.ccb.commands import (
    CancelPendingStart,
    CancelPendingStop,
    ChangeStartDate,
    ChangeStopDate,
    RequestStop,
    StartService,
)
from sync.ccb.errors import InvalidCommand
from sync.ccb.model import CreatedBy, Premise, SaStatus, SeasonalPreference
from sync.ccb.reversion import in_season

from .world import (
    ADMIN,
    LANDLORD,
    NEW_TENANT,
    PREMISE,
    SP_E,
    TENANT,
    TENANT_E,
    TENANT_W,
    World,
    address,
    day,
    no_fieldwork_admin,
)

LIVE = (SaStatus.PENDING_START, SaStatus.ACTIVE, SaStatus.PENDING_STOP)


def stop_tenant(world: World, offset: int, sa_id: str = TENANT_E) -> None:
    world.run(RequestStop(account_id=TENANT, sa_ids=(sa_id,), stop_date=day(offset)))


def start_new_tenant(world: World, offset: int, sa_type: str = "E-RES") -> str:
    changes = world.run(StartService(account_id=NEW_TENANT, sa_type=sa_type,
                                     premise_id=PREMISE, start_date=day(offset)))
    (sa_id,) = [sa.id for sa in changes.sas.values() if sa.account_id == NEW_TENANT]
    return sa_id


def test_step_4_7_tenant_stop_without_next_start_starts_landlord_service() -> None:
    world = World()
    stop_tenant(world, 10)
    (landlord_sa,) = world.landlord_sas()
    assert landlord_sa.status is SaStatus.PENDING_START
    assert landlord_sa.start_date == day(10)
    assert landlord_sa.end_date is None
    assert landlord_sa.sa_type == "E-RES"
    assert landlord_sa.premise_id == PREMISE
    assert landlord_sa.created_by == CreatedBy(kind="system", reason="landlord reversion",
                                               reciprocal_sa_id=TENANT_E)
    assert [(link.sp_id, link.start_date) for link in world.links(landlord_sa.id)] == [
        (SP_E, day(10))]
    (notice,) = [c for c in world.store.all_contacts() if c.contact_type == "LLREV"]
    assert notice.person_id == "P-L"
    assert notice.letter_queued


def test_step_4_7_reversion_per_service_type_and_only_with_a_preference_row() -> None:
    world = World(preferences=(SeasonalPreference(service_type="W"),))
    world.run(RequestStop(account_id=TENANT, premise_id=PREMISE, stop_date=day(10)))
    assert [sa.sa_type for sa in world.landlord_sas()] == ["W-RES"]


def test_back_to_back_next_start_on_the_stop_date_means_no_landlord_sa() -> None:
    world = World()
    stop_tenant(world, 10)
    assert len(world.landlord_sas(*LIVE)) == 1
    start_new_tenant(world, 10)
    assert world.landlord_sas(*LIVE) == []
    assert [sa.status for sa in world.landlord_sas()] == [SaStatus.CANCELED]


def test_next_start_after_the_stop_date_landlord_covers_the_gap_with_a_pending_stop() -> None:
    world = World()
    stop_tenant(world, 10)
    new_sa = start_new_tenant(world, 20)
    (landlord_sa,) = world.landlord_sas(*LIVE)
    assert (landlord_sa.status, landlord_sa.start_date, landlord_sa.end_date) == (
        SaStatus.PENDING_START, day(10), day(20))
    assert landlord_sa.stopped_by is not None
    assert landlord_sa.stopped_by.reciprocal_sa_id == new_sa
    assert [link.stop_date for link in world.links(landlord_sa.id)] == [day(20)]


@pytest.mark.parametrize(("gap", "reverted"), [(1, False), (2, True), (3, True)])
def test_minimum_reversion_days(gap: int, reverted: bool) -> None:
    """landlord_min_reversion_days is 2 in the default configuration."""
    world = World()
    stop_tenant(world, 10)
    start_new_tenant(world, 10 + gap)
    assert bool(world.landlord_sas(*LIVE)) is reverted


def test_next_start_before_the_stop_date_moves_the_stop_and_cancels_the_landlord_sa() -> None:
    world = World()
    stop_tenant(world, 10)
    start_new_tenant(world, 6)
    assert world.sa(TENANT_E).end_date == day(6)
    assert world.sa(TENANT_E).status is SaStatus.PENDING_STOP
    assert world.landlord_sas(*LIVE) == []


def test_step_4_9_5_0_5_3_tenant_changes_stop_date_landlord_start_follows() -> None:
    world = World()
    stop_tenant(world, 10)
    world.run(ChangeStopDate(sa_id=TENANT_E, stop_date=day(14)))
    assert world.sa(TENANT_E).end_date == day(14)
    (landlord_sa,) = world.landlord_sas(*LIVE)
    assert landlord_sa.start_date == day(14)
    assert [link.start_date for link in world.links(landlord_sa.id)] == [day(14)]
    assert [fa.scheduled_date for fa in world.fas(TENANT_E)] == [day(14)]
    assert [fa.scheduled_date for fa in world.fas(landlord_sa.id)] == [day(14)]


def test_step_5_1_5_2_change_stop_date_moves_the_back_to_back_new_tenant_start() -> None:
    world = World()
    stop_tenant(world, 10)
    new_sa = start_new_tenant(world, 10)
    world.run(ChangeStopDate(sa_id=TENANT_E, stop_date=day(12)))
    assert world.sa(new_sa).start_date == day(12)
    assert world.landlord_sas(*LIVE) == []


def test_step_5_1_change_stop_date_without_moving_the_next_start_opens_a_gap() -> None:
    world = World()
    stop_tenant(world, 10)
    new_sa = start_new_tenant(world, 10)
    world.run(ChangeStopDate(sa_id=TENANT_E, stop_date=day(5), move_next_start=False))
    assert world.sa(new_sa).start_date == day(10)
    (landlord_sa,) = world.landlord_sas(*LIVE)
    assert (landlord_sa.start_date, landlord_sa.end_date) == (day(5), day(10))


def test_step_5_2_new_tenant_start_change_moves_the_tenant_stop_with_it() -> None:
    world = World()
    stop_tenant(world, 10)
    new_sa = start_new_tenant(world, 10)
    world.run(ChangeStartDate(sa_id=new_sa, start_date=day(8)))
    assert world.sa(TENANT_E).end_date == day(8)
    assert world.landlord_sas(*LIVE) == []


def test_step_5_4_to_5_6_and_4_5_cancel_tenant_pending_stop_cancels_landlord_start() -> None:
    world = World()
    stop_tenant(world, 10)
    (landlord_sa,) = world.landlord_sas(*LIVE)
    changes = world.run(CancelPendingStop(sa_id=TENANT_E))
    assert world.sa(TENANT_E).status is SaStatus.ACTIVE
    assert world.sa(TENANT_E).end_date is None
    assert [link.stop_date for link in world.links(TENANT_E)] == [None]
    # 4.5: the landlord SA is canceled, which the outbox hears about (its US goes inactive).
    assert world.sa(landlord_sa.id).status is SaStatus.CANCELED
    assert ("SA", landlord_sa.id) in changes.changed
    assert {fa.status.value for fa in world.fas(TENANT_E)} == {"canceled"}


def test_new_tenant_cancels_a_pending_start_that_left_a_gap_landlord_covers_it() -> None:
    world = World()
    stop_tenant(world, 10)
    new_sa = start_new_tenant(world, 20)
    world.run(CancelPendingStart(sa_id=new_sa))
    (landlord_sa,) = world.landlord_sas(*LIVE)
    assert (landlord_sa.start_date, landlord_sa.end_date) == (day(10), None)


def test_new_tenant_back_to_back_start_canceled_landlord_reverts_again() -> None:
    world = World()
    stop_tenant(world, 10)
    new_sa = start_new_tenant(world, 10)
    world.run(CancelPendingStart(sa_id=new_sa))
    (landlord_sa,) = world.landlord_sas(*LIVE)
    assert (landlord_sa.start_date, landlord_sa.end_date) == (day(10), None)


def test_step_5_7_5_8_cancel_both_pending_stop_and_pending_start() -> None:
    world = World()
    stop_tenant(world, 10)
    new_sa = start_new_tenant(world, 10)
    world.run(CancelPendingStop(sa_id=TENANT_E, cancel_next_start=True))
    assert world.sa(TENANT_E).status is SaStatus.ACTIVE
    assert world.sa(new_sa).status is SaStatus.CANCELED
    assert world.landlord_sas(*LIVE) == []


def test_step_5_7_cancel_pending_stop_alone_is_refused_while_the_next_start_needs_the_sp() -> None:
    world = World()
    stop_tenant(world, 10)
    start_new_tenant(world, 10)
    before = world.store.state()
    with pytest.raises(InvalidCommand, match="service point 'SP-E': sa_sp_links"):
        world.run(CancelPendingStop(sa_id=TENANT_E))
    assert world.store.state() == before


def test_no_reversion_when_the_sa_type_has_it_off() -> None:
    sa_types = dict(ADMIN.sa_types)
    sa_types["E-RES"] = sa_types["E-RES"].model_copy(update={"landlord_reversion": False})
    world = World(ADMIN.model_copy(update={"sa_types": sa_types}))
    stop_tenant(world, 10)
    assert world.landlord_sas() == []


def test_no_reversion_without_a_landlord_agreement() -> None:
    world = World(with_agreement=False)
    stop_tenant(world, 10)
    assert world.landlord_sas() == []


def test_no_reversion_when_the_landlord_stops_own_service() -> None:
    world = World(no_fieldwork_admin())
    world.add_active_sa("SA-LW", LANDLORD, "W-RES", "PR-2", [])
    world.store.add(Premise(id="PR-2", address=address("14 Oak St"),
                            landlord_agreement_id="LA-1"))
    world.run(RequestStop(account_id=LANDLORD, sa_ids=("SA-LW",), stop_date=day(10)))
    assert world.landlord_sas(SaStatus.PENDING_START) == []


def test_reversion_is_disabled_when_no_reversion_algorithm_is_configured() -> None:
    admin = ADMIN.model_copy(update={"algorithms": ADMIN.algorithms.model_copy(
        update={"reversion": None})})
    world = World(admin)
    stop_tenant(world, 10)
    assert world.landlord_sas() == []


# --- seasons -------------------------------------------------------------------------------


@pytest.mark.parametrize(("start", "end", "when", "expected"), [
    ("0401", "0930", dt.date(2025, 4, 1), True),
    ("0401", "0930", dt.date(2025, 9, 30), True),
    ("0401", "0930", dt.date(2025, 10, 1), False),
    ("0401", "0930", dt.date(2025, 3, 31), False),
    ("1101", "0331", dt.date(2025, 12, 31), True),   # wraps the year end
    ("1101", "0331", dt.date(2026, 1, 1), True),
    ("1101", "0331", dt.date(2025, 3, 31), True),
    ("1101", "0331", dt.date(2025, 4, 1), False),
    ("1101", "0331", dt.date(2025, 10, 31), False),
])
def test_season_window(start: str, end: str, when: dt.date, expected: bool) -> None:
    preference = SeasonalPreference(service_type="E", seasonal=True, season_start=start,
                                    season_end=end)
    assert in_season(preference, when) is expected


def test_season_checked_on_the_stop_date() -> None:
    """TODAY is 3 March; a winter window 1101–0331 covers a stop on 31 March, not 1 April."""
    winter = (SeasonalPreference(service_type="E", seasonal=True, season_start="1101",
                                 season_end="0331"),)
    inside = World(preferences=winter)
    inside.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_E,),
                           stop_date=dt.date(2025, 3, 31)))
    assert len(inside.landlord_sas()) == 1
    outside = World(preferences=winter)
    outside.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_E,),
                            stop_date=dt.date(2025, 4, 1)))
    assert outside.landlord_sas() == []


def test_moving_the_stop_out_of_season_cancels_the_landlord_start() -> None:
    winter = (SeasonalPreference(service_type="E", seasonal=True, season_start="1101",
                                 season_end="0331"),)
    world = World(preferences=winter)
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_E,), stop_date=dt.date(2025, 3, 31)))
    world.run(ChangeStopDate(sa_id=TENANT_E, stop_date=dt.date(2025, 4, 2)))
    assert world.landlord_sas(*LIVE) == []


def test_water_and_electric_revert_independently() -> None:
    world = World()
    world.run(RequestStop(account_id=TENANT, premise_id=PREMISE, stop_date=day(10)))
    assert sorted(sa.sa_type for sa in world.landlord_sas(*LIVE)) == ["E-RES", "W-RES"]
    assert {sa.created_by.reciprocal_sa_id for sa in world.landlord_sas()} == {
        TENANT_E, TENANT_W}
