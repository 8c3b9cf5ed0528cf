"""Steps 2.0–2.3: review a landlord's pending stop, change person and account details that do not
move dates, and update the pending stop's forwarding address."""

from __future__ import annotations

import pytest

from sync.ccb.commands import ActivateSa, RequestStop, StartService, StopSa
from sync.ccb.details import (
    ChangeAccountDetails,
    ChangePersonDetails,
    UpdatePendingStop,
    pending_stop_impact,
)
from sync.ccb.dispatch import unit_of_work
from sync.ccb.errors import CcbError, InvalidCommand, InvalidTransition, NotFound
from sync.ccb.model import Address, FaStatus, Phone, SaStatus

from .world import (
    ADMIN,
    FORWARDING,
    LANDLORD,
    NEW_TENANT,
    PREMISE,
    TENANT,
    TENANT_E,
    TENANT_W,
    World,
    address,
    day,
    no_fieldwork_admin,
    now_of,
)


def landlord_pending_stop(world: World) -> tuple[str, str]:
    """The tenant left on day 1, the landlord's reverted service is active, and a new tenant
    starts on day 20: the landlord's SA is a pending stop tied to the new tenant's start."""
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_E,), stop_date=day(1)))
    world.run(StopSa(sa_id=TENANT_E), today=day(1))
    (landlord_sa,) = world.landlord_sas()
    world.run(ActivateSa(sa_id=landlord_sa.id), today=day(1))
    changes = world.run(StartService(account_id=NEW_TENANT, sa_type="E-RES",
                                     premise_id=PREMISE, start_date=day(20)))
    (new_sa,) = [sa.id for sa in changes.sas.values() if sa.account_id == NEW_TENANT]
    return landlord_sa.id, new_sa


def run_details(world: World, command: ChangePersonDetails | ChangeAccountDetails
                | UpdatePendingStop) -> None:
    world.store.execute(unit_of_work(command, world.admin, world.today, now_of(world.today)))


def test_step_2_0_2_1_impact_of_a_landlord_pending_stop_names_who_takes_over() -> None:
    world = World(no_fieldwork_admin())
    landlord_sa, new_sa = landlord_pending_stop(world)
    impact = pending_stop_impact(world.store, landlord_sa)
    assert impact.sa.status is SaStatus.PENDING_STOP
    assert impact.stop_date == day(20)
    assert impact.reciprocal is not None
    assert impact.reciprocal.id == new_sa
    assert impact.next_start is not None
    assert impact.next_start.id == new_sa
    assert [sa.id for sa in impact.moved_by_date_change] == [new_sa]
    assert impact.date_change_moves_others
    assert impact.pending_field_activities == ()


def test_step_2_1_impact_lists_pending_stop_fieldwork_and_no_successor() -> None:
    world = World()
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_E,), stop_date=day(5)))
    impact = pending_stop_impact(world.store, TENANT_E)
    assert impact.pending_field_activities
    assert all(fa.status is FaStatus.PENDING for fa in impact.pending_field_activities)
    # The landlord's reversion start follows the stop date: it is the next start.
    assert impact.next_start is not None
    assert impact.next_start.account_id == LANDLORD
    assert impact.reciprocal is None


def test_step_2_1_impact_of_an_sa_without_a_pending_stop_is_refused() -> None:
    world = World()
    with pytest.raises(InvalidCommand, match=r"SA 'SA-TE': status: has no pending stop"):
        pending_stop_impact(world.store, TENANT_E)
    with pytest.raises(NotFound, match=r"SA 'SA-NOPE' not found \(sa_id\)"):
        pending_stop_impact(world.store, "SA-NOPE")


def test_step_2_2_person_details_change_syncs_and_records_an_inquiry() -> None:
    world = World()
    run_details(world, ChangePersonDetails(
        person_id="P-T", name="TENANT,THOMAS", email="tom@example.com",
        phones=(Phone(type="cell", number="555-0101", primary=True),),
        mailing_address=FORWARDING))
    person = world.store.person("P-T")
    assert person is not None
    assert (person.name, person.email, person.version) == ("TENANT,THOMAS", "tom@example.com", 2)
    assert person.phones[0].number == "555-0101"
    assert person.mailing_address == FORWARDING
    assert ("PERSON", "P-T") in world.store.entity_changes
    (contact,) = world.store.all_contacts()
    assert (contact.person_id, contact.contact_type) == ("P-T", "INQUIRY")
    # No date moved.
    assert world.sa(TENANT_E).end_date is None


def test_step_2_2_account_mailing_premise_and_bill_cycle() -> None:
    world = World()
    run_details(world, ChangeAccountDetails(account_id=TENANT, mailing_address=FORWARDING))
    run_details(world, ChangeAccountDetails(account_id=TENANT, mailing_premise_id=PREMISE,
                                            bill_cycle="BC07"))
    account = world.store.account(TENANT)
    assert account is not None
    assert (account.mailing_premise_id, account.mailing_address) == (PREMISE, None)
    assert (account.bill_cycle, account.version) == ("BC07", 3)
    contacts = world.store.all_contacts()
    assert [(c.person_id, c.account_id, c.contact_type) for c in contacts] == [
        ("P-T", TENANT, "INQUIRY")] * 2


@pytest.mark.parametrize(("command", "error", "message"), [
    (ChangePersonDetails(person_id="P-NOPE", name="A,B"), NotFound,
     r"person 'P-NOPE' not found \(person_id\)"),
    (ChangePersonDetails(person_id="P-T", name="TENANT TOM"), InvalidCommand,
     r"person 'P-T': name: 'TENANT TOM' is invalid \(C2M-PERNMVAL\)"),
    (ChangePersonDetails(person_id="P-T", email="not-an-email"), InvalidCommand,
     r"person 'P-T': email: 'not-an-email' is not an email address"),
    (ChangePersonDetails(person_id="P-T", name="TENANT,TOM"), InvalidCommand,
     r"person 'P-T': details: nothing to change"),
    (ChangeAccountDetails(account_id="A-NOPE", bill_cycle="BC02"), NotFound,
     r"account 'A-NOPE' not found \(account_id\)"),
    (ChangeAccountDetails(account_id=TENANT, mailing_premise_id="PR-NOPE"), NotFound,
     r"premise 'PR-NOPE' not found \(mailing_premise_id\)"),
    (ChangeAccountDetails(account_id=TENANT, mailing_premise_id=PREMISE,
                          mailing_address=FORWARDING), InvalidCommand,
     r"account 'A-T': mailing_address: name a mailing premise or a mailing address"),
    (ChangeAccountDetails(account_id=TENANT, bill_cycle=" "), InvalidCommand,
     r"account 'A-T': bill_cycle: ' ' is not a bill cycle code"),
    (UpdatePendingStop(sa_id="SA-NOPE", forwarding_address=FORWARDING), NotFound,
     r"SA 'SA-NOPE' not found \(sa_id\)"),
    (UpdatePendingStop(sa_id=TENANT_W, forwarding_address=FORWARDING), InvalidTransition,
     r"SA 'SA-TW' in status 20 \(active\) cannot update pending stop"),
])
def test_step_2_2_2_3_bad_input_is_refused_and_changes_nothing(
        command: ChangePersonDetails | ChangeAccountDetails | UpdatePendingStop,
        error: type[CcbError], message: str) -> None:
    world = World()
    before = world.store.state()
    with pytest.raises(error, match=message):
        run_details(world, command)
    assert world.store.state() == before


def test_step_2_3_forwarding_address_set_then_applied_when_the_sa_stops() -> None:
    world = World(no_fieldwork_admin())
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_W,), stop_date=day(1)))
    first = Address(line1="1 First St", city="Peoria", state="IL", postal_code="61602")
    run_details(world, UpdatePendingStop(sa_id=TENANT_W, forwarding_address=first))
    run_details(world, UpdatePendingStop(sa_id=TENANT_W, forwarding_address=FORWARDING))
    sa = world.sa(TENANT_W)
    assert (sa.status, sa.end_date, sa.forwarding_address) == (
        SaStatus.PENDING_STOP, day(1), FORWARDING)
    assert sa.audit[-1].action == "update pending stop"
    account = world.store.account(TENANT)
    assert account is not None
    assert account.mailing_address is None
    world.run(StopSa(sa_id=TENANT_W), today=day(1))
    account = world.store.account(TENANT)
    person = world.store.person("P-T")
    assert account is not None
    assert account.mailing_address == FORWARDING
    assert person is not None
    assert person.mailing_address == FORWARDING


def test_step_2_3_cleared_forwarding_address_leaves_the_mailing_address() -> None:
    world = World(no_fieldwork_admin())
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_W,), stop_date=day(1),
                          forwarding_address=FORWARDING))
    run_details(world, UpdatePendingStop(sa_id=TENANT_W, forwarding_address=None))
    assert world.sa(TENANT_W).forwarding_address is None
    world.run(StopSa(sa_id=TENANT_W), today=day(1))
    account = world.store.account(TENANT)
    assert account is not None
    assert account.mailing_address is None


def test_step_2_3_landlord_pending_stop_update_keeps_dates_and_the_tie() -> None:
    world = World(no_fieldwork_admin())
    landlord_sa, new_sa = landlord_pending_stop(world)
    before = world.sa(landlord_sa)
    run_details(world, UpdatePendingStop(sa_id=landlord_sa, forwarding_address=address("5 Main")))
    after = world.sa(landlord_sa)
    assert (after.end_date, after.stopped_by, after.version) == (
        before.end_date, before.stopped_by, before.version + 1)
    assert world.sa(new_sa).start_date == day(20)
    assert ADMIN.contact_types["INQUIRY"]
