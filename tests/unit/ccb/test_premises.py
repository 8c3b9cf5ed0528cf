"""Premise management: parent premises inheriting the landlord agreement, one agreement
assigned to many premises, and stopping an account at every child premise in one command."""

from __future__ import annotations

import datetime as dt

from sync.ccb.commands import (
    AssignLandlordAgreement,
    GroupPremises,
    RequestStop,
    StopAtChildPremises,
)
from sync.ccb.model import Premise, SaStatus, ServiceAgreement, ServicePoint
from sync.ccb.reversion import effective_landlord_agreement

from .world import FORWARDING, TENANT, World, address, day

UNITS = ("U-1", "U-2", "U-3")


def apartment_block() -> World:
    """A parent premise PR-P with three units, each with a water SP served to the tenant; the
    landlord agreement sits on the parent only."""
    world = World(with_agreement=False)
    world.store.add(Premise(id="PR-P", address=address("1 Tower Rd"),
                            landlord_agreement_id="LA-1"))
    for unit in UNITS:
        world.store.add(Premise(id=unit, address=address(f"1 Tower Rd #{unit}"),
                                parent_premise_id="PR-P"),
                        ServicePoint(id=f"SP-{unit}", premise_id=unit, sp_type="W-RES"))
        world.add_active_sa(f"SA-{unit}", TENANT, "W-RES", unit, [f"SP-{unit}"])
    return world


def test_child_premise_inherits_the_parent_agreement_unless_it_has_its_own() -> None:
    world = apartment_block()
    agreement = effective_landlord_agreement(world.store, "U-1")
    assert agreement is not None
    assert agreement.id == "LA-1"
    assert effective_landlord_agreement(world.store, "PR-1") is None


def test_tenant_stop_at_a_child_premise_reverts_to_the_parent_landlord() -> None:
    world = apartment_block()
    world.run(RequestStop(account_id=TENANT, sa_ids=("SA-U-2",), stop_date=day(10)))
    (landlord_sa,) = world.landlord_sas()
    assert landlord_sa.premise_id == "U-2"


def test_stop_an_account_at_every_child_premise_in_one_command() -> None:
    world = apartment_block()
    changes = world.run(StopAtChildPremises(account_id=TENANT, parent_premise_id="PR-P",
                                            stop_date=day(10), forwarding_address=FORWARDING))
    for unit in UNITS:
        stopped = world.sa(f"SA-{unit}")
        assert (stopped.status, stopped.end_date) == (SaStatus.PENDING_STOP, day(10))
        assert stopped.forwarding_address == FORWARDING
    assert sorted(sa.premise_id or "" for sa in world.landlord_sas()) == list(UNITS)
    # The tenant's service at PR-1 (not a child) is untouched.
    assert world.sa("SA-TW").status is SaStatus.ACTIVE
    (contact,) = [c for c in changes.contacts.values() if c.contact_type == "STOPSVC"]
    assert contact.premise_id == "PR-P"


def test_assign_one_agreement_to_many_premises() -> None:
    world = World(with_agreement=False)
    world.store.add(Premise(id="PR-2", address=address("14 Oak St")))
    changes = world.run(AssignLandlordAgreement(agreement_id="LA-1",
                                                premise_ids=("PR-1", "PR-2")))
    for premise_id in ("PR-1", "PR-2"):
        premise = world.store.premise(premise_id)
        assert premise is not None
        assert premise.landlord_agreement_id == "LA-1"
        assert premise.version == 2
    assert set(changes.premises) == {"PR-1", "PR-2"}


def test_assigning_an_agreement_reverts_pending_stops_already_there() -> None:
    world = World(with_agreement=False)
    world.run(RequestStop(account_id=TENANT, sa_ids=("SA-TW",), stop_date=day(10)))
    assert world.landlord_sas() == []
    world.run(AssignLandlordAgreement(agreement_id="LA-1", premise_ids=("PR-1",)))
    (landlord_sa,) = world.landlord_sas()
    assert landlord_sa.start_date == day(10)
    world.run(AssignLandlordAgreement(agreement_id=None, premise_ids=("PR-1",)))
    assert world.sa(landlord_sa.id).status is SaStatus.CANCELED


def test_group_premises_under_a_parent() -> None:
    world = apartment_block()
    world.store.add(Premise(id="U-4", address=address("1 Tower Rd #4")))
    world.run(GroupPremises(parent_premise_id="PR-P", premise_ids=("U-4",)))
    assert [p.id for p in world.store.child_premises("PR-P")] == [*UNITS, "U-4"]
    agreement = effective_landlord_agreement(world.store, "U-4")
    assert agreement is not None


def test_an_sa_serves_its_premise_from_its_start_date_until_the_day_it_ends() -> None:
    def sa(status: SaStatus, end: dt.date | None = None) -> ServiceAgreement:
        return ServiceAgreement(id="SA-1", account_id="A-1", sa_type="W-RES", status=status,
                                start_date=dt.date(2025, 3, 3), end_date=end)

    day_before, start, end = dt.date(2025, 3, 2), dt.date(2025, 3, 3), dt.date(2025, 3, 10)
    assert not sa(SaStatus.ACTIVE).serves_on(day_before)
    assert sa(SaStatus.ACTIVE).serves_on(start)
    assert sa(SaStatus.PENDING_STOP, end).serves_on(end - dt.timedelta(days=1))
    assert not sa(SaStatus.PENDING_STOP, end).serves_on(end)
    assert sa(SaStatus.REACTIVATED).serves_on(end)
    assert not sa(SaStatus.PENDING_START).serves_on(end)  # not until SAACT activates it
    assert not any(sa(status).serves_on(end) for status in (
        SaStatus.STOPPED, SaStatus.CLOSED, SaStatus.CANCELED))
