"""CCB state -> snapshot -> bytes -> MDM command, applied by MDM: the landlord/tenant process
from the CCB side to the MDM side through the wire contract."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import pytest

from sync.ccb.changes import Changes
from sync.ccb.commands import CancelPendingStop, RequestStop
from sync.ccb.model import (
    Account,
    MeasuringComponent,
    Person,
    Phone,
    Premise,
    SaStatus,
    ServiceAgreement,
    ServicePoint,
)
from sync.mapping.codec import decode_acknowledgement, decode_sync_message, encode
from sync.mapping.messages import (
    Acknowledgement,
    AckOutcome,
    SaSyncMessage,
    snapshot_fingerprint,
)
from sync.mapping.sa_to_us import acknowledgement_for, command_for
from sync.mapping.snapshots import (
    Delivery,
    SnapshotError,
    person_snapshot,
    sa_relationship_snapshot,
    sa_snapshot,
    snapshot_for,
)
from sync.mdm.memory import InMemoryMdmStore
from sync.mdm.model import UsStatus
from tests.unit.ccb.world import (
    ADMIN,
    LANDLORD,
    PREMISE,
    SINCE,
    SP_E,
    SP_G,
    SP_W,
    TENANT,
    TENANT_E,
    TENANT_W,
    World,
    address,
    day,
    now_of,
)

DELIVERY = Delivery(version=1, sync_request_id="SR-1",
                    event_time=dt.datetime(2025, 3, 3, 10, tzinfo=dt.UTC))


class Pipeline:
    """CCB changes through the wire into an MDM store, one message per changed entity."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.mdm = InMemoryMdmStore(world.admin)
        self.versions: dict[str, int] = {}

    def sync(self, entries: Iterable[tuple[str, str]]) -> dict[str, Acknowledgement]:
        acks = {}
        for entity_type, entity_id in entries:
            key = f"{entity_type}:{entity_id}"
            self.versions[key] = version = self.versions.get(key, 0) + 1
            message = snapshot_for(self.world.store, self.world.admin, entity_type, entity_id,
                                   Delivery(version, f"SR-{key}-{version}",
                                            now_of(self.world.today)))
            received = decode_sync_message(encode(message))
            command = command_for(received)
            decision = None if command is None else self.mdm.apply(command)
            ack = acknowledgement_for(received, decision, now_of(self.world.today))
            acks[key] = decode_acknowledgement(encode(ack))
        return acks

    def run(self, command: RequestStop | CancelPendingStop) -> dict[str, Acknowledgement]:
        changes: Changes = self.world.run(command)
        return self.sync(changes.changed)


def metered_world() -> World:
    """The landlord/tenant world with a direct-channel measuring component on every SP."""
    world = World()
    for sp_id, sp_type, mc_class in ((SP_E, "E-RES", "kWh"), (SP_G, "G-RES", "therm"),
                                     (SP_W, "W-RES", "gallon")):
        world.store.add(ServicePoint(
            id=sp_id, premise_id=PREMISE, sp_type=sp_type, meter_id=f"M-{sp_id}",
            measuring_components=(MeasuringComponent(id=f"MC-{sp_id}", mc_class=mc_class),)))
    return world


@pytest.fixture
def pipeline() -> Pipeline:
    pipeline = Pipeline(metered_world())
    acks = pipeline.sync([("SA", TENANT_E), ("SA", TENANT_W), ("PERSON", "P-T")])
    assert {ack.outcome for ack in acks.values()} == {AckOutcome.SYNCHRONIZED}
    return pipeline


def test_sa_snapshot_carries_the_full_state() -> None:
    world = metered_world()
    message = sa_snapshot(world.store, ADMIN, TENANT_E, DELIVERY)
    assert message.key == f"SA:{TENANT_E}"
    assert (message.sa_type, message.us_type) == ("E-RES", "E-RES-US")
    assert (message.sa_status, message.start_date, message.end_date) == ("20", SINCE, None)
    assert message.external_account_id == TENANT
    assert message.account.model_dump(by_alias=False) == {
        "account_id": TENANT, "customer_class": "RES", "bill_cycle": "BC01", "division": "MAIN"}
    assert (message.division, message.main_contact, message.premise_id) == ("MAIN", "P-T",
                                                                             PREMISE)
    assert message.time_zone is None  # neither premise nor SP has one: MDM defaults it
    assert [(link.sp_id, link.start_date, link.stop_date) for link in message.sp_links] == [
        (SP_E, SINCE, None)]
    (sp,) = message.service_points
    assert (sp.sp_id, sp.sp_type, sp.meter_id, sp.version) == (SP_E, "E-RES", f"M-{SP_E}", 1)
    assert [(mc.mc_id, mc.mc_class, mc.channel) for mc in sp.measuring_components] == [
        (f"MC-{SP_E}", "kWh", "direct")]
    assert (message.version, message.sync_request_id) == (1, "SR-1")


def test_time_zone_from_the_premise_else_the_first_sp() -> None:
    world = metered_world()
    sp = world.store.service_point(SP_E)
    assert sp is not None
    world.store.add(sp.model_copy(update={"time_zone": "America/Denver"}))
    assert sa_snapshot(world.store, ADMIN, TENANT_E, DELIVERY).time_zone == "America/Denver"
    world.store.add(Premise(id=PREMISE, address=address("12 Oak St"),
                            landlord_agreement_id="LA-1", time_zone="America/Chicago"))
    assert sa_snapshot(world.store, ADMIN, TENANT_E, DELIVERY).time_zone == "America/Chicago"


def test_step_1_4_1_5_tenant_stop_and_landlord_pending_start_reach_mdm(
    pipeline: Pipeline,
) -> None:
    """1.1 stop request -> 4.7 landlord reversion -> 1.4 sync -> 1.5 US updated in MDM."""
    acks = pipeline.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_E,), stop_date=day(10)))
    (landlord_sa,) = pipeline.world.landlord_sas()
    assert acks[f"SA:{TENANT_E}"].outcome is AckOutcome.SYNCHRONIZED
    assert acks[f"SA:{landlord_sa.id}"].outcome is AckOutcome.SYNCHRONIZED
    assert acks[f"SA:{landlord_sa.id}"].mdm_us_id == landlord_sa.id
    tenant_us = pipeline.mdm.get_us(TENANT_E)
    landlord_us = pipeline.mdm.get_us(landlord_sa.id)
    assert tenant_us is not None
    assert landlord_us is not None
    assert (tenant_us.status, tenant_us.end_date) == (UsStatus.ACTIVE, day(10))
    assert (landlord_us.status, landlord_us.start_date) == (UsStatus.PENDING, day(10))
    assert landlord_us.external_account_id == LANDLORD
    assert landlord_us.main_contact_id == "P-L"
    # Back to back at the SP: the tenant's link stops the day the landlord's starts.
    assert [link.stop for link in tenant_us.sp_links] == [day(10)]
    assert [link.start for link in landlord_us.sp_links] == [day(10)]
    assert landlord_us.time_zone == ADMIN.installation.base_time_zone


def test_step_4_5_canceled_landlord_start_deactivates_its_us(pipeline: Pipeline) -> None:
    pipeline.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_E,), stop_date=day(10)))
    (landlord_sa,) = pipeline.world.landlord_sas()
    changes = pipeline.world.run(CancelPendingStop(sa_id=TENANT_E))
    assert {("SA", TENANT_E), ("SA", landlord_sa.id)} <= set(changes.changed)
    acks = pipeline.sync([("SA", landlord_sa.id), ("SA", TENANT_E)])
    assert {ack.outcome for ack in acks.values()} == {AckOutcome.SYNCHRONIZED}
    landlord_us = pipeline.mdm.get_us(landlord_sa.id)
    tenant_us = pipeline.mdm.get_us(TENANT_E)
    assert landlord_us is not None
    assert tenant_us is not None
    assert landlord_us.status is UsStatus.INACTIVE
    assert (tenant_us.status, tenant_us.end_date) == (UsStatus.ACTIVE, None)


def test_step_5_4_tenant_reopened_before_the_landlord_cancel_arrives_is_an_error_until_resent(
    pipeline: Pipeline,
) -> None:
    """Messages of different entities have different keys, so MDM may see them in either
    order. The tenant's open-ended link overlaps the landlord's still pending US: rejected with
    the reason, and a resend after the landlord's cancel is applied."""
    pipeline.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_E,), stop_date=day(10)))
    (landlord_sa,) = pipeline.world.landlord_sas()
    pipeline.world.run(CancelPendingStop(sa_id=TENANT_E))
    (early,) = pipeline.sync([("SA", TENANT_E)]).values()
    assert early.outcome is AckOutcome.ERROR
    (error,) = early.errors
    assert (error.code, error.path) == ("D2-USSPDTVAL", "spLinks[0].spId")
    assert landlord_sa.id in error.message
    assert early.mdm_us_id == TENANT_E
    pipeline.sync([("SA", landlord_sa.id)])
    (resent,) = pipeline.sync([("SA", TENANT_E)]).values()
    assert resent.outcome is AckOutcome.SYNCHRONIZED


def test_resending_the_same_state_is_a_duplicate_with_the_same_fingerprint(
    pipeline: Pipeline,
) -> None:
    store = pipeline.world.store
    first = sa_snapshot(store, ADMIN, TENANT_E, DELIVERY)
    again = sa_snapshot(store, ADMIN, TENANT_E,
                        Delivery(2, "SR-2", DELIVERY.event_time + dt.timedelta(hours=1)))
    assert snapshot_fingerprint(first) == snapshot_fingerprint(again)
    command = command_for(first)
    assert command is not None
    assert pipeline.mdm.apply(command).outcome.value == "DUPLICATE"  # version 1 applied


def test_a_stop_changes_the_fingerprint(pipeline: Pipeline) -> None:
    before = snapshot_fingerprint(sa_snapshot(pipeline.world.store, ADMIN, TENANT_E, DELIVERY))
    pipeline.run(RequestStop(account_id=TENANT, sa_ids=(TENANT_E,), stop_date=day(10)))
    after = sa_snapshot(pipeline.world.store, ADMIN, TENANT_E, DELIVERY)
    assert after.sa_status == SaStatus.PENDING_STOP.value
    assert snapshot_fingerprint(after) != before


def test_deposit_sa_has_no_us_type_and_is_synchronized_without_a_us(pipeline: Pipeline) -> None:
    pipeline.world.store.add(ServiceAgreement(id="SA-DEP", account_id=TENANT, sa_type="DEP-RES",
                                              status=SaStatus.ACTIVE, start_date=SINCE))
    message = sa_snapshot(pipeline.world.store, ADMIN, "SA-DEP", DELIVERY)
    assert message.us_type is None
    assert message.sp_links == ()
    (ack,) = pipeline.sync([("SA", "SA-DEP")]).values()
    assert (ack.outcome, ack.mdm_us_id) == (AckOutcome.SYNCHRONIZED, None)
    assert pipeline.mdm.get_us("SA-DEP") is None


def test_sub_sa_carries_its_master_and_mdm_accepts_the_sub_us(pipeline: Pipeline) -> None:
    world = pipeline.world
    world.store.add(ServicePoint(
        id="SP-E2", premise_id=PREMISE, sp_type="E-RES",
        measuring_components=(MeasuringComponent(id="MC-E2", mc_class="kWh"),)))
    world.add_active_sa("SA-SUB", TENANT, "E-RES", PREMISE, ["SP-E2"], master_sa_id=TENANT_E)
    relationship = sa_relationship_snapshot(world.store, "SA-SUB", DELIVERY)
    assert relationship.key == "SA_RELATIONSHIP:SA-SUB"
    assert (relationship.master_external_id, relationship.start_date) == (TENANT_E, SINCE)
    acks = pipeline.sync([("SA", "SA-SUB"), ("SA_RELATIONSHIP", "SA-SUB")])
    assert {ack.outcome for ack in acks.values()} == {AckOutcome.SYNCHRONIZED}
    sub_us = pipeline.mdm.get_us("SA-SUB")
    assert sub_us is not None
    assert sub_us.master_external_id == TENANT_E


def test_person_snapshot() -> None:
    world = metered_world()
    world.store.add(Person(id="P-T", name="TENANT,TOM", email="tom@example.com",
                           phones=(Phone(number="217-555-0100", primary=True),)))
    message = person_snapshot(world.store, "P-T", DELIVERY)
    assert (message.key, message.name, message.email) == ("PERSON:P-T", "TENANT,TOM",
                                                           "tom@example.com")
    assert [(p.type, p.number, p.primary) for p in message.phones] == [
        ("home", "217-555-0100", True)]


def test_snapshot_lists_are_in_a_fixed_order() -> None:
    """One state, one snapshot: links by start date then SP, SPs by id."""
    world = metered_world()
    world.add_active_sa("SA-2", TENANT, "E-RES", PREMISE, [SP_W, SP_E])
    message = sa_snapshot(world.store, ADMIN, "SA-2", DELIVERY)
    assert [link.sp_id for link in message.sp_links] == sorted([SP_E, SP_W])
    assert [sp.sp_id for sp in message.service_points] == sorted([SP_E, SP_W])


# --- bad input -------------------------------------------------------------------------------


def test_unknown_entities_name_what_is_missing() -> None:
    world = metered_world()
    with pytest.raises(SnapshotError, match="SA 'SA-NONE': id: SA not found"):
        sa_snapshot(world.store, ADMIN, "SA-NONE", DELIVERY)
    with pytest.raises(SnapshotError, match="person 'P-NONE'"):
        person_snapshot(world.store, "P-NONE", DELIVERY)
    with pytest.raises(SnapshotError, match="METER 'X': entity_type: unknown entity type"):
        snapshot_for(world.store, ADMIN, "METER", "X", DELIVERY)


def test_sa_with_an_unconfigured_type_or_missing_account_is_refused() -> None:
    world = metered_world()
    world.store.add(ServiceAgreement(id="SA-X", account_id=TENANT, sa_type="STEAM",
                                     status=SaStatus.ACTIVE, start_date=SINCE))
    with pytest.raises(SnapshotError, match="SA 'SA-X': sa_type: SA type 'STEAM'"):
        sa_snapshot(world.store, ADMIN, "SA-X", DELIVERY)
    world.store.add(ServiceAgreement(id="SA-Y", account_id="A-NONE", sa_type="E-RES",
                                     status=SaStatus.ACTIVE, start_date=SINCE))
    with pytest.raises(SnapshotError, match="SA 'SA-Y': account_id: account 'A-NONE'"):
        sa_snapshot(world.store, ADMIN, "SA-Y", DELIVERY)


def test_account_attributes_follow_the_account() -> None:
    world = metered_world()
    world.store.add(Account(id=TENANT, main_person_id="P-N", customer_class="COM",
                            bill_cycle="BC07", division="NORTH"))
    message: SaSyncMessage = sa_snapshot(world.store, ADMIN, TENANT_W, DELIVERY)
    assert (message.main_contact, message.division) == ("P-N", "NORTH")
    assert (message.account.customer_class, message.account.bill_cycle) == ("COM", "BC07")
