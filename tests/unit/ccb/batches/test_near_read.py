"""FANRMRCO (step 1.9b): a pending FA completed with a read prorated at the FA date from the
regular reads that bracket it; a To Do when no usable pair exists."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.ccb.batches.near_read import bracketing_reads, interpolate_read
from sync.ccb.commands import RequestStop
from sync.ccb.errors import InvalidCommand
from sync.ccb.model import FaPurpose, FaStatus, MeterRead, ReadType, SaStatus, ToDoStatus
from tests.unit.ccb.batches.support import pending_fas, run_batch, todos
from tests.unit.ccb.world import ADMIN, SP_E, SP_G, TENANT, TENANT_E, World, day

ZONE = ZoneInfo(ADMIN.installation.base_time_zone)
T0 = dt.datetime(2025, 3, 1, tzinfo=ZONE)


def read(read_id: str, at: dt.datetime, value: float, sp_id: str = SP_E,
         read_type: ReadType = ReadType.REGULAR) -> MeterRead:
    return MeterRead(id=read_id, sp_id=sp_id, read_at=at, value=value, read_type=read_type)


def midnight(date: dt.date) -> dt.datetime:
    return dt.datetime.combine(date, dt.time(0, 0), tzinfo=ZONE)


# --- interpolation -----------------------------------------------------------------------------


def test_step_1_9b_a_date_exactly_between_two_reads_gets_the_mean() -> None:
    before, after = read("R1", T0, 1000.0), read("R2", T0 + dt.timedelta(days=2), 1100.0)
    assert interpolate_read(before, after, T0 + dt.timedelta(days=1)) == 1050.0


def test_step_1_9b_a_date_on_a_bracket_end_gets_that_reads_value() -> None:
    before, after = read("R1", T0, 1000.0), read("R2", T0 + dt.timedelta(days=4), 1100.0)
    assert interpolate_read(before, after, T0) == 1000.0
    assert interpolate_read(before, after, T0 + dt.timedelta(days=4)) == 1100.0
    # A read exactly at the instant brackets it on both sides.
    assert bracketing_reads([before, after], T0) == (before, before)


def test_step_1_9b_interpolation_refuses_an_instant_outside_the_pair() -> None:
    before, after = read("R1", T0, 1000.0), read("R2", T0 + dt.timedelta(days=2), 1100.0)
    with pytest.raises(InvalidCommand, match="is not between"):
        interpolate_read(before, after, T0 + dt.timedelta(days=3))


def test_step_1_9b_bracketing_uses_regular_reads_only() -> None:
    estimated = read("R0", T0 + dt.timedelta(hours=1), 5.0, read_type=ReadType.CUSTOMER)
    regular = read("R1", T0, 1000.0)
    later = read("R2", T0 + dt.timedelta(days=1), 1010.0)
    assert bracketing_reads([estimated, regular, later], T0 + dt.timedelta(hours=2)) \
        == (regular, later)


@given(first=st.floats(0, 1e6), usage=st.floats(0, 1e5), hours=st.integers(1, 2000),
       share=st.floats(0, 1))
def test_step_1_9b_prorated_read_lies_between_the_bracketing_reads(
        first: float, usage: float, hours: int, share: float) -> None:
    before = read("R1", T0, first)
    after = read("R2", T0 + dt.timedelta(hours=hours), first + usage)
    at = T0 + dt.timedelta(seconds=round(hours * 3600 * share))
    value = interpolate_read(before, after, at)
    assert round(before.value, 3) <= value <= round(after.value, 3)


# --- the batch ---------------------------------------------------------------------------------


def _world_with_stop_on_day_1() -> tuple[World, str]:
    world = World()
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_E,), stop_date=day(1)))
    (landlord,) = world.landlord_sas(SaStatus.PENDING_START)
    return world, landlord.id


def test_step_1_9b_fanrmrco_completes_the_outgoing_stop_and_incoming_start_with_one_read(
) -> None:
    world, landlord_id = _world_with_stop_on_day_1()
    world.store.add(read("RD-A", midnight(day(0)), 1000.0), read("RD-B", midnight(day(2)), 1100.0))

    report = run_batch(world, "FANRMRCO", day(2))

    (stop_fa,) = world.fas(TENANT_E, FaPurpose.STOP)
    (start_fa,) = world.fas(landlord_id, FaPurpose.START)
    for fa in (stop_fa, start_fa):
        assert (fa.status, fa.completion_read) == (FaStatus.COMPLETE, 1050.0)
        assert fa.completed_at == midnight(day(1))
    prorated = [r for r in world.store.reads_of_sp(SP_E)
                if r.read_type is ReadType.SYSTEM_PRORATED]
    assert [(r.value, r.read_at) for r in prorated] == [(1050.0, midnight(day(1)))]
    assert (report.examined, report.changed, report.todos_raised) == (2, 1, 0)

    run_batch(world, "SAACT", day(2))
    assert [link.stop_read for link in world.links(TENANT_E)] == [1050.0]
    assert [link.start_read for link in world.links(landlord_id)] == [1050.0]


def test_step_1_9b_fanrmrco_raises_a_todo_when_no_usable_pair_once_the_window_passed() -> None:
    world, _landlord_id = _world_with_stop_on_day_1()
    world.store.add(read("RD-A", midnight(day(0)), 1000.0))  # near, but nothing after it

    waiting = run_batch(world, "FANRMRCO", day(2))  # window (3 days) not over yet
    assert (waiting.changed, waiting.todos_raised) == (0, 0)

    report = run_batch(world, "FANRMRCO", day(5))

    entries = todos(world, "TD-FANR")
    assert {e.drill_key.kind for e in entries} == {"fa"}
    assert len(entries) == 2  # the tenant's stop FA and the landlord's start FA
    assert all("no regular read at or after" in e.message for e in entries)
    assert all(e.role == "FIELD" for e in entries)
    assert report.todos_raised == 2
    assert pending_fas(world, TENANT_E, FaPurpose.STOP)


def test_step_1_9b_fanrmrco_refuses_a_pair_whose_later_read_is_lower() -> None:
    world, _landlord_id = _world_with_stop_on_day_1()
    world.store.add(read("RD-A", midnight(day(0)), 1000.0), read("RD-B", midnight(day(2)), 10.0))

    run_batch(world, "FANRMRCO", day(5))

    (entry, _other) = todos(world, "TD-FANR")
    assert "is lower than the earlier read" in entry.message


def test_step_1_9b_fanrmrco_leaves_fas_without_a_near_read_to_the_field_crew() -> None:
    world, _landlord_id = _world_with_stop_on_day_1()
    world.store.add(read("RD-OLD", midnight(day(-20)), 900.0),
                    read("RD-GAS", midnight(day(0)), 50.0, sp_id=SP_G))
    before = world.store.state()

    report = run_batch(world, "FANRMRCO", day(10))

    assert world.store.state() == before
    assert report.nothing_to_do


def test_step_1_9b_fanrmrco_second_run_changes_nothing_and_a_later_read_resolves_the_todo(
) -> None:
    world, _landlord_id = _world_with_stop_on_day_1()
    world.store.add(read("RD-A", midnight(day(0)), 1000.0))
    run_batch(world, "FANRMRCO", day(5))
    before = world.store.state()
    assert run_batch(world, "FANRMRCO", day(5)).nothing_to_do
    assert world.store.state() == before

    world.store.add(read("RD-B", midnight(day(6)), 1120.0))
    report = run_batch(world, "FANRMRCO", day(6))

    assert report.changed == 1
    assert todos(world, "TD-FANR", ToDoStatus.OPEN) == []
    (stop_fa,) = world.fas(TENANT_E, FaPurpose.STOP)
    assert stop_fa.completion_read == 1020.0  # one sixth of the way from day 0 to day 6
