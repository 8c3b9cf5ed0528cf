"""Property: whatever order the versioned snapshots of one SA arrive in, MDM ends in the state
of the highest version (at-least-once delivery with idempotent apply)."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from sync.mdm.commands import UpsertUsageSubscription
from sync.mdm.decision import Outcome
from sync.mdm.memory import InMemoryMdmStore
from tests.unit.mdm.builders import default_admin, us_command

ADMIN = default_admin()

# SA transitions of SPEC.md section 3 (status -> statuses reachable in one action).
NEXT_STATUS = {
    "10": ("10", "20", "70"),
    "20": ("30", "70"),
    "30": ("30", "20", "40", "70"),
    "40": ("60", "20", "70"),
    "60": ("50", "20"),
    "50": ("60", "20"),
    "70": (),
}
WITH_END = {"30", "40", "50", "60"}


@st.composite
def sa_histories(draw: st.DrawFn) -> list[UpsertUsageSubscription]:
    """The snapshots CCB sends for one SA over its life, version 1..n."""
    start = dt.date(2025, 1, 1) + dt.timedelta(days=draw(st.integers(0, 200)))
    status = "10"
    commands = []
    for version in range(1, draw(st.integers(1, 8)) + 1):
        if version > 1:
            choices = NEXT_STATUS[status]
            if not choices:
                break
            next_status = draw(st.sampled_from(choices))
            if status == next_status == "10":  # change of start date
                start += dt.timedelta(days=draw(st.integers(-30, 30)))
            status = next_status
        end = start + dt.timedelta(days=draw(st.integers(1, 400))) if status in WITH_END \
            else None
        commands.append(us_command(
            "SA-P", version=version, sa_status=status, start=start, end=end,
            main_contact_id=f"PER-{draw(st.integers(1, 3))}",
            sp_ids=draw(st.sampled_from([("SP-1",), ("SP-1", "SP-2")])),
        ))
    return commands


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_any_arrival_order_ends_in_the_state_of_the_highest_version(data: st.DataObject) -> None:
    history = data.draw(sa_histories())
    arrival = data.draw(st.permutations(history))
    store = InMemoryMdmStore(ADMIN)
    outcomes = [store.apply(command).outcome for command in arrival]

    highest = max(history, key=lambda command: command.version)
    reference = InMemoryMdmStore(ADMIN)
    assert reference.apply(highest).outcome is Outcome.APPLIED
    assert store.get_us("SA-P") == reference.get_us("SA-P")
    assert Outcome.REJECTED not in outcomes
    # Every command older than one already applied was skipped as a duplicate.
    applied_versions = [c.version for c, o in zip(arrival, outcomes, strict=True)
                        if o is Outcome.APPLIED]
    assert applied_versions == sorted(applied_versions)
