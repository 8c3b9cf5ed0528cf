"""PSASPM (step 1.6) and TD-SSFTL (steps 5.9, 6.0): field activities shortly before the date,
and a To Do for pending starts/stops that have gone unfulfilled."""

from __future__ import annotations

from sync.ccb.commands import RequestStop
from sync.ccb.model import FaPurpose, FaStatus, SaStatus, ToDoStatus
from sync.config.admin import FaCreation
from tests.unit.ccb.batches.support import pending_fas, run_batch, todos
from tests.unit.ccb.world import (
    ADMIN,
    SP_E,
    TENANT,
    TENANT_E,
    TENANT_W,
    World,
    day,
    with_installation,
)

BY_MONITOR = with_installation(ADMIN, fa_creation=FaCreation.BY_PENDING_MONITOR, fa_lead_days=5)


def test_step_1_6_psaspm_creates_missing_fas_within_the_lead_days_only() -> None:
    world = World(BY_MONITOR)
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_E,), stop_date=day(10)))
    (landlord,) = world.landlord_sas(SaStatus.PENDING_START)
    assert world.fas(TENANT_E) == []

    early = run_batch(world, "PSASPM", day(4))  # day 10 is 6 days out: beyond the lead days
    assert early.examined == 0
    assert world.fas(TENANT_E) == []

    report = run_batch(world, "PSASPM", day(5))

    (stop_fa,) = pending_fas(world, TENANT_E, FaPurpose.STOP)
    assert (stop_fa.fa_type, stop_fa.sp_id, stop_fa.scheduled_date) == ("E-OFF", SP_E, day(10))
    (start_fa,) = pending_fas(world, landlord.id, FaPurpose.START)
    assert (start_fa.fa_type, start_fa.scheduled_date) == ("E-ON", day(10))
    assert (report.examined, report.changed, report.todos_raised) == (2, 2, 0)


def test_step_1_6_psaspm_second_run_creates_nothing() -> None:
    world = World(BY_MONITOR)
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_E,), stop_date=day(3)))
    run_batch(world, "PSASPM", day(0))
    before = world.store.state()

    second = run_batch(world, "PSASPM", day(0))

    assert world.store.state() == before
    assert second.nothing_to_do
    assert second.examined == 2


def test_step_1_6_psaspm_ignores_sa_types_without_fieldwork() -> None:
    world = World(BY_MONITOR)
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_W,), stop_date=day(2)))

    report = run_batch(world, "PSASPM", day(0))

    assert report.examined == 0
    assert world.fas(TENANT_W) == []


def test_step_1_6_psaspm_replaces_a_canceled_fa_at_request_time_installations_too() -> None:
    world = World()  # FAs created at request time
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_E,), stop_date=day(2)))
    (fa,) = pending_fas(world, TENANT_E, FaPurpose.STOP)
    world.store.add(fa.model_copy(update={"status": FaStatus.CANCELED}))

    report = run_batch(world, "PSASPM", day(0))

    (replacement,) = pending_fas(world, TENANT_E, FaPurpose.STOP)
    assert replacement.id != fa.id
    assert report.changed == 1


def test_step_6_0_td_ssftl_raises_one_todo_per_pending_sa_older_than_the_threshold() -> None:
    world = World(with_installation(ADMIN, old_pending_threshold_days=30))
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_E,), stop_date=day(1)))
    (landlord,) = world.landlord_sas(SaStatus.PENDING_START)

    at_threshold = run_batch(world, "TD-SSFTL", day(31))  # exactly 30 days: not older
    assert at_threshold.examined == 0

    report = run_batch(world, "TD-SSFTL", day(32))

    entries = todos(world, "TD-SSFTL")
    assert {entry.drill_key.id for entry in entries} == {TENANT_E, landlord.id}
    (tenant_entry,) = [e for e in entries if e.drill_key.id == TENANT_E]
    assert "pending stop" in tenant_entry.message
    assert "31 days later (threshold 30 days)" in tenant_entry.message
    assert (report.examined, report.changed, report.todos_raised) == (2, 0, 2)


def test_step_5_9_td_ssftl_second_run_raises_no_duplicate_and_saact_resolves_it() -> None:
    world = World(with_installation(ADMIN, old_pending_threshold_days=30))
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_E,), stop_date=day(1)))
    (landlord,) = world.landlord_sas(SaStatus.PENDING_START)
    run_batch(world, "TD-SSFTL", day(40))
    before = world.store.state()

    second = run_batch(world, "TD-SSFTL", day(40))
    assert world.store.state() == before
    assert second.nothing_to_do

    world.complete_fieldwork(TENANT_E, FaPurpose.STOP, read=10.0)
    world.complete_fieldwork(landlord.id, FaPurpose.START, read=10.0)
    run_batch(world, "SAACT", day(40))
    assert world.sa(TENANT_E).status is SaStatus.STOPPED
    assert todos(world, "TD-SSFTL", ToDoStatus.OPEN) == []
