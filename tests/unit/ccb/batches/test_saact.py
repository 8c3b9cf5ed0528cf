"""SAACT (steps 5.9, 6.0): due pending starts are activated and due pending stops stopped when
ready; otherwise one open To Do per SA says what is missing; a second run changes nothing."""

from __future__ import annotations

import pytest

from sync.ccb.commands import RequestStop, StartService
from sync.ccb.model import FaPurpose, SaStatus, ToDoStatus
from tests.unit.ccb.batches.support import run_batch, todos
from tests.unit.ccb.world import (
    FORWARDING,
    NEW_TENANT,
    PREMISE,
    SP_E,
    TENANT,
    TENANT_E,
    TENANT_W,
    World,
    day,
    no_fieldwork_admin,
)


def _landlord_sa_id(world: World) -> str:
    (landlord,) = world.landlord_sas(SaStatus.PENDING_START)
    return landlord.id


def test_step_5_9_saact_stops_a_due_pending_stop_and_runs_the_stop_consequences() -> None:
    world = World(no_fieldwork_admin())
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_W,), stop_date=day(2),
                          forwarding_address=FORWARDING))
    landlord_id = _landlord_sa_id(world)

    report = run_batch(world, "SAACT", day(2))

    assert world.sa(TENANT_W).status is SaStatus.STOPPED
    assert world.sa(TENANT_W).audit[-1].user == "SAACT"
    # Stop consequences ran on the batch stop: the forwarding address is now the account's.
    account = world.store.account(TENANT)
    assert account is not None
    assert account.mailing_address == FORWARDING
    # The landlord's reverted start on the same date was due too.
    assert world.sa(landlord_id).status is SaStatus.ACTIVE
    assert (report.examined, report.changed, report.todos_raised) == (2, 2, 0)
    assert report.errors == []


def test_step_5_9_saact_moves_reads_of_complete_fieldwork_onto_the_links() -> None:
    world = World()
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_E,), stop_date=day(3)))
    landlord_id = _landlord_sa_id(world)
    world.complete_fieldwork(TENANT_E, FaPurpose.STOP, read=5120.0)
    world.complete_fieldwork(landlord_id, FaPurpose.START, read=5120.0)

    report = run_batch(world, "SAACT", day(3))

    assert world.sa(TENANT_E).status is SaStatus.STOPPED
    assert world.sa(landlord_id).status is SaStatus.ACTIVE
    assert [link.stop_read for link in world.links(TENANT_E)] == [5120.0]
    assert [link.start_read for link in world.links(landlord_id)] == [5120.0]
    assert report.changed == 2


def test_step_6_0_saact_raises_one_todo_per_sa_saying_what_is_missing() -> None:
    world = World()
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_E,), stop_date=day(1)))
    landlord_id = _landlord_sa_id(world)

    report = run_batch(world, "SAACT", day(1))

    assert world.sa(TENANT_E).status is SaStatus.PENDING_STOP
    assert world.sa(landlord_id).status is SaStatus.PENDING_START
    entries = todos(world, "TD-SAACT")
    assert {entry.drill_key.id for entry in entries} == {TENANT_E, landlord_id}
    by_sa = {entry.drill_key.id: entry for entry in entries}
    assert f"stop FA with a read missing for SP {SP_E!r}" in by_sa[TENANT_E].message
    assert f"start FA with a read missing for SP {SP_E!r}" in by_sa[landlord_id].message
    assert all(entry.role == "CSR" for entry in entries)
    assert (report.examined, report.changed, report.todos_raised) == (2, 0, 2)


def test_step_6_0_saact_second_run_on_the_same_date_changes_nothing() -> None:
    """Idempotence: one SA ready (stopped on the first run), two waiting for fieldwork (To Do
    on the first run); the second run changes no entity and raises no second To Do."""
    world = World()
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_E, TENANT_W), stop_date=day(1)))
    first = run_batch(world, "SAACT", day(1))
    assert first.changed >= 1
    assert first.todos_raised == 2
    before = world.store.state()

    second = run_batch(world, "SAACT", day(1))

    assert world.store.state() == before
    assert (second.changed, second.todos_raised, second.errors) == (0, 0, [])
    assert second.nothing_to_do
    assert "nothing to do" in second.summary()
    assert len(todos(world, "TD-SAACT", ToDoStatus.OPEN)) == 2


def test_step_6_0_saact_completes_its_todo_once_the_sa_moves_on() -> None:
    world = World()
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_E,), stop_date=day(1)))
    run_batch(world, "SAACT", day(1))
    world.complete_fieldwork(TENANT_E, FaPurpose.STOP, read=77.0)

    report = run_batch(world, "SAACT", day(2))

    assert world.sa(TENANT_E).status is SaStatus.STOPPED
    (entry,) = [e for e in todos(world, "TD-SAACT") if e.drill_key.id == TENANT_E]
    assert entry.status is ToDoStatus.COMPLETE
    assert entry.log[-1].comment.startswith("resolved: SA stopped by SAACT")
    assert report.todos_raised == 0


def test_saact_leaves_sas_dated_after_the_business_date_alone() -> None:
    world = World(no_fieldwork_admin())
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_W,), stop_date=day(5)))
    before = world.store.state()

    report = run_batch(world, "SAACT", day(4))

    assert world.store.state() == before
    assert report.examined == 0
    assert report.nothing_to_do


@pytest.mark.parametrize("chunk_size", [1, 500])
def test_saact_activates_a_due_master_before_its_sub_sa_whatever_the_order(
        chunk_size: int) -> None:
    """A sub SA becomes active only with an active master (SPEC section 3); when both are due
    the same day, the run activates the master first even if it meets the sub first."""
    world = World(no_fieldwork_admin())
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_W,), stop_date=day(1)))
    world.run(StartService(account_id=NEW_TENANT, sa_type="W-RES", start_date=day(1),
                           premise_id=PREMISE))
    (master,) = world.sas_of(NEW_TENANT, SaStatus.PENDING_START)
    world.run(StartService(account_id=NEW_TENANT, sa_type="E-SURGE", start_date=day(1),
                           master_sa_id=master.id))
    (sub,) = [sa for sa in world.sas_of(NEW_TENANT) if sa.master_sa_id == master.id]
    # The selection runs in (date, id) order: make the sub come first.
    world.store.add(sub.model_copy(update={"start_date": day(0)}))
    for link in world.links(sub.id):
        world.store.add(link.model_copy(update={"start_date": day(0)}))

    report = run_batch(world, "SAACT", day(1), chunk_size=chunk_size)

    assert world.sa(master.id).status is SaStatus.ACTIVE
    assert world.sa(sub.id).status is SaStatus.ACTIVE
    assert world.sa(TENANT_W).status is SaStatus.STOPPED
    assert (report.changed, report.todos_raised, report.errors) == (3, 0, [])
    # In a chunk of one, the master left the selection (no longer pending) before its page
    # was read; in a chunk of all three it is examined and found active already.
    assert report.examined == (2 if chunk_size == 1 else 3)
