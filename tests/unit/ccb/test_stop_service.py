"""Request stop, fieldwork, forwarding address, manual and immediate stop (steps 1.1–1.9,
3.2–3.3, 4.4)."""

from __future__ import annotations

import pytest

from sync.ccb.commands import ActivateSa, RequestStop, StartService, StopSa
from sync.ccb.errors import InvalidTransition
from sync.ccb.model import FaPurpose, FaStatus, SaStatus
from sync.config.admin import FaCreation

from .world import (
    ADMIN,
    FORWARDING,
    PREMISE,
    SP_E,
    TENANT,
    TENANT_E,
    TENANT_W,
    World,
    day,
    with_installation,
)


def test_step_1_1_request_stop_of_every_premise_sa_at_a_premise() -> None:
    world = World()
    changes = world.run(RequestStop(account_id=TENANT, premise_id=PREMISE, stop_date=day(10)))
    assert world.sa(TENANT_E).status is SaStatus.PENDING_STOP
    assert world.sa(TENANT_E).end_date == day(10)
    # The water SA has no fieldwork; its date is in the future, so it is pending stop too.
    assert world.sa(TENANT_W).status is SaStatus.PENDING_STOP
    assert ("SA", TENANT_E) in changes.changed
    assert ("SA", TENANT_W) in changes.changed


def test_step_1_1_request_stop_of_one_named_sa_leaves_the_others_active() -> None:
    world = World()
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_W,), stop_date=day(10)))
    assert world.sa(TENANT_W).status is SaStatus.PENDING_STOP
    assert world.sa(TENANT_E).status is SaStatus.ACTIVE


def test_step_1_2_links_get_the_stop_date_and_a_stop_fa_is_linked() -> None:
    world = World()
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_E,), stop_date=day(10)))
    (link,) = world.links(TENANT_E)
    assert link.stop_date == day(10)
    (fa,) = world.fas(TENANT_E, FaPurpose.STOP)
    assert (fa.fa_type, fa.sp_id, fa.sa_sp_link_id, fa.scheduled_date) == (
        "E-OFF", SP_E, link.id, day(10))
    assert fa.status is FaStatus.PENDING


def test_step_1_6_no_fa_at_request_when_the_pending_monitor_creates_them() -> None:
    world = World(with_installation(ADMIN, fa_creation=FaCreation.BY_PENDING_MONITOR))
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_E,), stop_date=day(10)))
    assert world.fas(TENANT_E) == []


def test_step_1_6_no_fa_for_an_sa_type_without_fieldwork() -> None:
    world = World()
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_W,), stop_date=day(10)))
    assert world.fas(TENANT_W) == []


def test_step_1_7_to_1_9_forwarding_address_stored_until_stop_then_applied() -> None:
    world = World()
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_E,), stop_date=day(5),
                          forwarding_address=FORWARDING))
    assert world.sa(TENANT_E).forwarding_address == FORWARDING
    account = world.store.account(TENANT)
    assert account is not None
    assert account.mailing_address is None
    world.complete_fieldwork(TENANT_E, FaPurpose.STOP, read=4321.0)
    world.run(StopSa(sa_id=TENANT_E), today=day(5))
    account = world.store.account(TENANT)
    person = world.store.person("P-T")
    assert account is not None
    assert account.mailing_address == FORWARDING
    assert person is not None
    assert person.mailing_address == FORWARDING
    assert ("PERSON", "P-T") in world.store.entity_changes


def test_request_stop_records_a_stop_contact_on_the_main_person_with_a_letter() -> None:
    world = World()
    changes = world.run(RequestStop(account_id=TENANT, premise_id=PREMISE, stop_date=day(10),
                                    contact_method="email"))
    (contact,) = [c for c in changes.contacts.values() if c.account_id == TENANT]
    assert (contact.person_id, contact.account_id, contact.premise_id) == ("P-T", TENANT, PREMISE)
    assert (contact.contact_type, contact.contact_class, contact.method) == (
        "STOPSVC", "RES", "email")
    assert contact.letter_template == "STOP-CONFIRM"
    assert contact.letter_queued


def test_step_3_2_3_3_manual_stop_needs_the_date_and_the_stop_read() -> None:
    world = World()
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_E,), stop_date=day(3)))
    with pytest.raises(InvalidTransition, match=r"stop date .* not reached"):
        world.run(StopSa(sa_id=TENANT_E), today=day(2))
    with pytest.raises(InvalidTransition, match="stop FA with a read missing for SP 'SP-E'"):
        world.run(StopSa(sa_id=TENANT_E), today=day(3))
    world.complete_fieldwork(TENANT_E, FaPurpose.STOP, read=812.5)
    world.run(StopSa(sa_id=TENANT_E), today=day(3))
    stopped = world.sa(TENANT_E)
    assert stopped.status is SaStatus.STOPPED
    (link,) = world.links(TENANT_E)
    assert link.stop_read == 812.5
    assert [entry.action for entry in stopped.audit][-2:] == ["request stop", "stop"]


def test_step_3_3_immediate_stop_algorithm_stops_a_due_stop_without_fieldwork() -> None:
    """C1-SAIS-ST: water has no fieldwork and the date is reached, so it stops at once; the
    electric SA waits for its FA."""
    world = World()
    world.run(RequestStop(account_id=TENANT, premise_id=PREMISE, stop_date=day(0)))
    assert world.sa(TENANT_W).status is SaStatus.STOPPED
    assert world.sa(TENANT_E).status is SaStatus.PENDING_STOP


def test_step_3_3_no_immediate_stop_when_the_algorithm_is_switched_off() -> None:
    admin = ADMIN.model_copy(update={"algorithms": ADMIN.algorithms.model_copy(
        update={"immediate_stop": None})})
    world = World(admin)
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_W,), stop_date=day(0)))
    assert world.sa(TENANT_W).status is SaStatus.PENDING_STOP


def test_step_4_4_sub_sa_goes_to_pending_stop_and_stopped_with_its_master() -> None:
    world = World()
    world.add_active_sa("SA-SUB", TENANT, "E-SURGE", None, [], master_sa_id=TENANT_W)
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_W,), stop_date=day(4)))
    assert world.sa("SA-SUB").status is SaStatus.PENDING_STOP
    assert world.sa("SA-SUB").end_date == day(4)
    world.run(StopSa(sa_id=TENANT_W), today=day(4))
    assert world.sa("SA-SUB").status is SaStatus.STOPPED


def test_sub_sa_is_activated_only_when_its_master_is_active() -> None:
    world = World()
    world.add_active_sa("SA-M", TENANT, "E-SURGE", None, [])
    world.run(StartService(account_id=TENANT, sa_type="E-SURGE", start_date=day(0),
                           master_sa_id="SA-M"))
    (sub,) = [sa for sa in world.sas_of(TENANT, SaStatus.PENDING_START)]
    world.run(RequestStop(account_id=TENANT, sa_ids=("SA-M",), stop_date=day(0)))
    with pytest.raises(InvalidTransition, match="master SA 'SA-M' is not active"):
        world.run(ActivateSa(sa_id=sub.id))


def test_activation_copies_the_start_fa_read_onto_the_link() -> None:
    world = World()
    world.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_E,), stop_date=day(2)))
    world.run(StartService(account_id="A-N", sa_type="E-RES", premise_id=PREMISE,
                           start_date=day(2)))
    (new,) = world.sas_of("A-N")
    assert [fa.fa_type for fa in world.fas(new.id)] == ["E-ON"]
    with pytest.raises(InvalidTransition, match="start FA with a read missing"):
        world.run(ActivateSa(sa_id=new.id), today=day(2))
    world.complete_fieldwork(new.id, FaPurpose.START, read=55.0)
    world.run(ActivateSa(sa_id=new.id), today=day(2))
    assert world.sa(new.id).status is SaStatus.ACTIVE
    assert [link.start_read for link in world.links(new.id)] == [55.0]
    assert [link.sp_id for link in world.links(new.id)] == [SP_E]
    # Back-to-back: the landlord SA reverted at the stop was canceled when the start came.
    assert [sa.status for sa in world.landlord_sas()] == [SaStatus.CANCELED]
