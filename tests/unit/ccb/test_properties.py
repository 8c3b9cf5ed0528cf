"""Property tests: random command sequences on a premise with a tenant, a new tenant and a
landlord never produce an illegal transition, never leave two non-canceled SAs of one service
type serving one SP on the same day, and a refused command changes nothing."""

from __future__ import annotations

import datetime as dt
import itertools
import os
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync.ccb.commands import (
    ActivateSa,
    CancelPendingStart,
    CancelPendingStop,
    ChangeStartDate,
    ChangeStopDate,
    Command,
    CompleteFieldActivity,
    RequestStop,
    StartService,
    StopSa,
)
from sync.ccb.errors import CcbError
from sync.ccb.lifecycle import TRANSITIONS, Action
from sync.ccb.model import FaStatus, SaStatus
from sync.config.admin import AdminConfig

from .world import (
    ADMIN,
    LANDLORD,
    NEW_TENANT,
    PREMISE,
    TENANT,
    TENANT_E,
    TENANT_W,
    World,
    no_fieldwork_admin,
)

ACCOUNTS = (TENANT, NEW_TENANT, LANDLORD)
WITHOUT_FIELDWORK = no_fieldwork_admin()
# Repeated kinds are drawn more often: starts, fieldwork and time passing drive the flows.
KINDS = ("stop", "start", "start", "start", "change_stop", "change_start", "cancel_stop",
         "cancel_start", "activate", "activate", "manual_stop", "manual_stop", "fieldwork",
         "fieldwork", "advance", "advance")


@dataclass(frozen=True)
class Step:
    kind: str
    account: int
    sa: int
    offset: int
    flag: bool
    sa_type: str


steps = st.builds(Step, kind=st.sampled_from(KINDS), account=st.integers(0, 2),
                  sa=st.integers(0, 50), offset=st.integers(-3, 30), flag=st.booleans(),
                  sa_type=st.sampled_from(("E-RES", "W-RES")))


# Which SAs a kind of command is usually aimed at; a step picks among them (any SA when none
# fits, so that wrong-status commands are exercised too).
TARGETS = {
    "stop": (SaStatus.ACTIVE,),
    "change_stop": (SaStatus.PENDING_STOP, SaStatus.PENDING_START),
    "change_start": (SaStatus.PENDING_START,),
    "cancel_stop": (SaStatus.PENDING_STOP, SaStatus.PENDING_START),
    "cancel_start": (SaStatus.PENDING_START,),
    "activate": (SaStatus.PENDING_START,),
    "manual_stop": (SaStatus.PENDING_STOP,),
    "fieldwork": (SaStatus.PENDING_START, SaStatus.PENDING_STOP),
}


def command_for(world: World, step: Step) -> list[Command]:
    sas = sorted(world.store.all_sas(), key=lambda sa: sa.id)
    wanted = TARGETS.get(step.kind, ())
    fitting = [sa for sa in sas if sa.status in wanted] or sas
    sa = fitting[step.sa % len(fitting)]
    # Dates near the pending stops make back-to-back starts, gaps and overlaps likely.
    anchors = sorted({world.today} | {s.end_date for s in sas if s.end_date is not None
                                      and s.status is not SaStatus.CANCELED})
    near = anchors[step.sa % len(anchors)] + dt.timedelta(days=step.offset % 8 - 2)
    when = world.today + dt.timedelta(days=step.offset)
    match step.kind:
        case "stop":
            return [RequestStop(account_id=sa.account_id, sa_ids=(sa.id,), stop_date=when)]
        case "start":
            return [StartService(account_id=ACCOUNTS[step.account], sa_type=step.sa_type,
                                 premise_id=PREMISE, start_date=near)]
        case "change_stop":
            return [ChangeStopDate(sa_id=sa.id, stop_date=near if step.flag else when,
                                   move_next_start=step.flag)]
        case "change_start":
            return [ChangeStartDate(sa_id=sa.id, start_date=near, move_previous_stop=step.flag)]
        case "cancel_stop":
            return [CancelPendingStop(sa_id=sa.id, cancel_next_start=step.flag)]
        case "cancel_start":
            return [CancelPendingStart(sa_id=sa.id)]
        case "activate":
            return [ActivateSa(sa_id=sa.id)]
        case "manual_stop":
            return [StopSa(sa_id=sa.id)]
        case "fieldwork":
            return [CompleteFieldActivity(fa_id=fa.id, read_value=float(step.offset + 10))
                    for fa in world.store.field_activities_of_sa(sa.id)
                    if fa.status is FaStatus.PENDING]
    return []


ACTIONS = {action.value for action in Action}


def assert_invariants(world: World) -> None:
    sas = {sa.id: sa for sa in world.store.all_sas()}
    for sa in sas.values():
        # Every recorded transition is a row of the table, chained from the previous one.
        previous: SaStatus | None = SaStatus.ACTIVE if sa.id.startswith("SA-T") else None
        for entry in sa.audit:
            assert entry.from_status == previous, (sa.id, sa.audit)
            if entry.action not in ACTIONS:  # a record such as a stop consequence
                assert entry.to_status == entry.from_status, (sa.id, entry)
                continue
            assert TRANSITIONS[(entry.from_status, Action(entry.action))] == entry.to_status
            previous = entry.to_status
        if sa.audit:
            assert previous == sa.status
        # Links carry the SA's dates.
        for link in world.store.links_of_sa(sa.id):
            assert (link.start_date, link.stop_date) == (sa.start_date, sa.end_date), sa.id
        if sa.end_date is not None:
            assert sa.end_date >= sa.start_date
    # No two non-canceled SAs of one service type serve one SP on the same day.
    for sp_id in ("SP-E", "SP-G", "SP-W"):
        periods = sorted(
            (link.start_date, link.stop_date or dt.date.max, link.sa_id)
            for link in world.store.links_at_sp(sp_id)
            if sas[link.sa_id].status is not SaStatus.CANCELED
            and link.start_date < (link.stop_date or dt.date.max))
        for (_, first_end, first), (second_start, _, second) in itertools.pairwise(periods):
            assert first_end <= second_start, (sp_id, first, second, periods)


# CCB_PROPERTY_EXAMPLES raises the number of examples for a longer search.
EXAMPLES = int(os.environ.get("CCB_PROPERTY_EXAMPLES", "300"))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from((ADMIN, WITHOUT_FIELDWORK)), st.integers(-2, 20), st.integers(-2, 20),
       st.lists(steps, min_size=1, max_size=30))
def test_random_command_sequences_keep_the_invariants(
        admin: AdminConfig, electric_stop: int, water_stop: int, sequence: list[Step]) -> None:
    """With fieldwork (electric needs FAs) and without (every stop and start can complete)."""
    world = World(admin)
    assert_invariants(world)
    # The tenant is leaving: every example starts from pending stops (and landlord reversion).
    for sa_id, offset in ((TENANT_E, electric_stop), (TENANT_W, water_stop)):
        world.run(RequestStop(account_id=TENANT, sa_ids=(sa_id,),
                              stop_date=world.today + dt.timedelta(days=offset)))
        assert_invariants(world)
    for step in sequence:
        if step.kind == "advance":
            world.today += dt.timedelta(days=max(step.offset, 0))
            continue
        for command in command_for(world, step):
            before = world.store.state()
            try:
                world.run(command)
            except CcbError:
                assert world.store.state() == before, command
            assert_invariants(world)
